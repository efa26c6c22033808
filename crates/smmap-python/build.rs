//! Makes PyO3's configuration cfgs (`Py_GIL_DISABLED`, `Py_LIMITED_API`, …)
//! visible to this crate: the state guard is built differently for a
//! free-threaded interpreter.

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
