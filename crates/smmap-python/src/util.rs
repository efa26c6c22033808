//! `smmap.util`: `MapWindow`, `align_to_mmap`, `is_64_bit`.

use std::sync::atomic::{AtomicI64, Ordering};

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::args::AnyInt;

/// The allocation granularity, as `i128` for Python-int arithmetic.
fn granularity() -> i128 {
    i128::from(*smmap::ALLOCATIONGRANULARITY)
}

/// `num` aligned to the granularity with Python's floor semantics (so that
/// negative numbers behave as in the reference).
fn align(num: i128, round_up: bool) -> i128 {
    let g = granularity();
    if num >= 0 {
        if let Ok(n) = u64::try_from(num) {
            return i128::from(smmap::align_to_mmap(n, round_up));
        }
    }
    let res = num.div_euclid(g) * g;
    if round_up && res != num {
        res + g
    } else {
        res
    }
}

/// `v` within ±2^80: past every sum of a few 64-bit values, so that a
/// `min` with such a sum decides as with `v` itself, and sums with it never
/// overflow `i128`.
fn bounded(v: i128) -> i128 {
    v.clamp(-(1 << 80), 1 << 80)
}

fn to_i64(v: i128) -> PyResult<i64> {
    i64::try_from(v).map_err(|_| PyOverflowError::new_err("MapWindow offset or size out of range"))
}

/// Aligns `num` to the allocation granularity: down, or up when `round_up` is
/// true and `num` is not aligned already (1 becomes 4096 with `round_up`, 0
/// without, for a 4 KiB granularity). Any `int` (or object with
/// `__index__`), of any size, as the reference's arithmetic takes it.
#[pyfunction]
#[pyo3(signature = (num, round_up))]
pub(crate) fn align_to_mmap<'py>(
    num: &Bound<'py, PyAny>,
    round_up: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = num.py();
    // SAFETY: PyNumber_Index takes any object and returns a new reference to
    // an `int` (calling `__index__` once), or NULL with the exception set.
    let num = unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyNumber_Index(num.as_ptr())) }?;
    let up = round_up.is_truthy()?;
    if let Ok(n) = num.extract::<i64>() {
        return Ok(align(i128::from(n), up).into_pyobject(py)?.into_any());
    }
    // Beyond 64 bits: the same arithmetic on Python integers.
    let g = *smmap::ALLOCATIONGRANULARITY;
    let res = num.floor_div(g)?.mul(g)?;
    if up && res.ne(&num)? {
        res.add(g)
    } else {
        Ok(res)
    }
}

/// True if the system is 64-bit; otherwise it is assumed to be 32-bit.
#[pyfunction]
pub(crate) fn is_64_bit() -> bool {
    smmap::is_64_bit()
}

/// A range `[ofs, ofs + size)` of a file, used to place a new region between
/// its neighbours (smmap's `MapWindow`). `ofs` and `size` are writable.
///
/// The arithmetic is the reference's, on Python integers (within 64 bits):
/// `extend_left_to`/`extend_right_to` may shrink a window that is already
/// larger than `max_size`, as the reference does. Windows can be copied and
/// pickled (with a subclass's `__dict__`).
#[pyclass(name = "MapWindow", module = "smmap.util", subclass, frozen)]
#[derive(Default)]
pub(crate) struct PyMapWindow {
    /// Each value is read and written whole; as with the reference's
    /// attributes, a method that reads both and writes both is not atomic.
    ofs: AtomicI64,
    size: AtomicI64,
}

impl PyMapWindow {
    fn get(&self) -> (i128, i128) {
        (
            i128::from(self.ofs.load(Ordering::Relaxed)),
            i128::from(self.size.load(Ordering::Relaxed)),
        )
    }

    fn set(&self, ofs: i128, size: i128) -> PyResult<()> {
        let (ofs, size) = (to_i64(ofs)?, to_i64(size)?);
        self.ofs.store(ofs, Ordering::Relaxed);
        self.size.store(size, Ordering::Relaxed);
        Ok(())
    }
}

/// A plain int within 64 bits, from a value a window-like object returned;
/// `OverflowError` beyond them (a window's offsets are 64-bit).
fn window_int(v: &Bound<'_, PyAny>) -> PyResult<i128> {
    Ok(i128::from(to_i64(v.extract::<AnyInt>()?.0)?))
}

#[pymethods]
impl PyMapWindow {
    /// A window `(0, 0)`, for `__init__` to set (see the crate
    /// documentation: the arguments are `__init__`'s).
    #[new]
    #[pyo3(signature = (*_args, **_kwargs), text_signature = "(offset, size)")]
    fn __new__(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        PyMapWindow::default()
    }

    /// A window of `size` bytes at `offset`.
    fn __init__(&self, offset: i64, size: i64) {
        self.ofs.store(offset, Ordering::Relaxed);
        self.size.store(size, Ordering::Relaxed);
    }

    /// Offset into the file in bytes.
    #[getter]
    fn get_ofs(&self) -> i64 {
        self.ofs.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_ofs(&self, value: i64) {
        self.ofs.store(value, Ordering::Relaxed);
    }

    /// Size of the window in bytes.
    #[getter]
    fn get_size(&self) -> i64 {
        self.size.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_size(&self, value: i64) {
        self.size.store(value, Ordering::Relaxed);
    }

    /// A new window covering `region`: `cls(region._b, region.size())`.
    #[classmethod]
    fn from_region<'py>(
        cls: &Bound<'py, PyType>,
        region: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ofs = region.getattr("_b")?;
        let size = region.call_method0("size")?;
        cls.call1((ofs, size))
    }

    /// Offset one past the last byte.
    fn ofs_end(&self) -> i128 {
        let (ofs, size) = self.get();
        ofs + size
    }

    /// Moves the start down to the granularity and rounds the size up to it,
    /// so that the aligned window contains the old one.
    fn align(&self) -> PyResult<()> {
        let (ofs, size) = self.get();
        let nofs = align(ofs, false);
        self.set(nofs, align(size + ofs - nofs, true))
    }

    /// Moves the start towards the end of `window` (`window.ofs_end()`), the
    /// neighbour on the left, without making the window larger than
    /// `max_size`; the new window still contains the old one's end. `window`
    /// may be this window itself.
    fn extend_left_to(&self, window: &Bound<'_, PyAny>, max_size: AnyInt) -> PyResult<()> {
        let left_end = window_int(&window.call_method0("ofs_end")?)?;
        let (ofs, size) = self.get();
        let mut rofs = ofs - left_end;
        let nsize = rofs + size;
        // A huge `max_size` is no limit; a result beyond 64 bits is an
        // `OverflowError`.
        rofs -= nsize - nsize.min(bounded(max_size.0));
        self.set(ofs - rofs, size + rofs)
    }

    /// Moves the end towards the start of `window` (`window.ofs`), the
    /// neighbour on the right, without making the window larger than
    /// `max_size`. `window` may be this window itself.
    fn extend_right_to(&self, window: &Bound<'_, PyAny>, max_size: AnyInt) -> PyResult<()> {
        let right = window_int(&window.getattr("ofs")?)?;
        let (ofs, size) = self.get();
        let nsize = (size + (right - (ofs + size))).min(bounded(max_size.0));
        self.set(ofs, nsize)
    }

    /// The state `copy` and `pickle` keep: `(__dict__ or None, {"ofs": …,
    /// "size": …})`, restored on an object made by `cls.__new__(cls)` (as
    /// for the reference's `__slots__` class).
    fn __getstate__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let dict = slf
            .getattr_opt("__dict__")?
            .unwrap_or_else(|| py.None().into_bound(py));
        let (ofs, size) = slf.get().get();
        let slots = PyDict::new(py);
        slots.set_item("ofs", ofs)?;
        slots.set_item("size", size)?;
        PyTuple::new(py, [dict, slots.into_any()])
    }

    /// A short description, for debugging.
    fn __repr__(&self) -> String {
        let (ofs, size) = self.get();
        format!("MapWindow({ofs}, {size})")
    }
}
