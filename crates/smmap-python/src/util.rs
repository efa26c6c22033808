//! `smmap.util`: `MapWindow`, `align_to_mmap`, `is_64_bit`.

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::args::{bind, AnyInt};
use crate::region::PyMapRegion;

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

/// `v` within the `i64` range, so that sums of a few such values never
/// overflow `i128`.
fn clamp64(v: i128) -> i128 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX))
}

fn to_i64(v: i128) -> PyResult<i64> {
    i64::try_from(v).map_err(|_| PyOverflowError::new_err("MapWindow offset or size out of range"))
}

/// Aligns `num` to the allocation granularity: down, or up when `round_up` is
/// true and `num` is not aligned already (1 becomes 4096 with `round_up`, 0
/// without, for a 4 KiB granularity).
#[pyfunction]
#[pyo3(signature = (num, round_up))]
pub(crate) fn align_to_mmap(num: AnyInt, round_up: &Bound<'_, PyAny>) -> PyResult<i128> {
    let num = to_i64(num.0)?;
    Ok(align(i128::from(num), round_up.is_truthy()?))
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
/// larger than `max_size`, as the reference does.
#[pyclass(name = "MapWindow", module = "smmap.util", subclass)]
pub(crate) struct PyMapWindow {
    /// Offset into the file in bytes.
    #[pyo3(get, set)]
    ofs: i64,
    /// Size of the window in bytes.
    #[pyo3(get, set)]
    size: i64,
}

impl PyMapWindow {
    fn end(&self) -> i128 {
        i128::from(self.ofs) + i128::from(self.size)
    }
}

/// `(ofs, size)` of a window-like object: a `MapWindow`, or anything with
/// integer attributes `ofs` and `size`.
fn window_of(w: &Bound<'_, PyAny>) -> PyResult<(i128, i128)> {
    if let Ok(w) = w.downcast::<PyMapWindow>() {
        let w = w.borrow();
        return Ok((i128::from(w.ofs), i128::from(w.size)));
    }
    let ofs: AnyInt = w.getattr("ofs")?.extract()?;
    let size: AnyInt = w.getattr("size")?.extract()?;
    Ok((clamp64(ofs.0), clamp64(size.0)))
}

#[pymethods]
impl PyMapWindow {
    /// A window of `size` bytes at `offset`.
    #[new]
    #[classmethod]
    #[pyo3(signature = (*args, **kwargs))]
    #[pyo3(text_signature = "(offset, size)")]
    fn new(
        cls: &Bound<'_, PyType>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        // A Python subclass may have a constructor of its own; its
        // `__init__` (or ours, inherited) sets the window.
        if !cls.is(&cls.py().get_type::<PyMapWindow>()) {
            return Ok(PyMapWindow { ofs: 0, size: 0 });
        }
        let [offset, size] = bind("MapWindow()", ["offset", "size"], args, kwargs)?;
        let missing = |name: &str| {
            PyTypeError::new_err(format!("MapWindow() missing required argument '{name}'"))
        };
        Ok(PyMapWindow {
            ofs: offset.ok_or_else(|| missing("offset"))?.extract()?,
            size: size.ok_or_else(|| missing("size"))?.extract()?,
        })
    }

    /// Sets the window (see the class documentation). Construction already
    /// did, with the same arguments; this exists so that Python subclasses
    /// can call `super().__init__(...)`.
    #[pyo3(name = "__init__")]
    #[pyo3(signature = (offset, size))]
    #[pyo3(text_signature = "($self, offset, size)")]
    fn init(&mut self, offset: i64, size: i64) {
        (self.ofs, self.size) = (offset, size);
    }

    /// A new window covering `region`: `cls(region._b, region.size())`.
    #[classmethod]
    fn from_region<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        region: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (ofs, size): (PyObject, PyObject) = if let Ok(r) = region.downcast::<PyMapRegion>() {
            let (o, s) = r.borrow().window();
            let py = cls.py();
            (
                o.into_pyobject(py)?.into_any().unbind(),
                s.into_pyobject(py)?.into_any().unbind(),
            )
        } else {
            (
                region.getattr("_b")?.unbind(),
                region.call_method0("size")?.unbind(),
            )
        };
        cls.call1((ofs, size))
    }

    /// Offset one past the last byte.
    fn ofs_end(&self) -> i128 {
        self.end()
    }

    /// Moves the start down to the granularity and rounds the size up to it,
    /// so that the aligned window contains the old one.
    fn align(&mut self) -> PyResult<()> {
        let ofs = i128::from(self.ofs);
        let nofs = align(ofs, false);
        let size = i128::from(self.size) + ofs - nofs;
        let size = align(size, true);
        self.ofs = to_i64(nofs)?;
        self.size = to_i64(size)?;
        Ok(())
    }

    /// Moves the start towards the end of `window`, the neighbour on the
    /// left, without making the window larger than `max_size`; the new window
    /// still contains the old one's end.
    fn extend_left_to(&mut self, window: &Bound<'_, PyAny>, max_size: AnyInt) -> PyResult<()> {
        let (wofs, wsize) = window_of(window)?;
        let mut rofs = i128::from(self.ofs) - (wofs + wsize);
        let nsize = rofs + i128::from(self.size);
        rofs -= nsize - nsize.min(clamp64(max_size.0));
        let ofs = to_i64(i128::from(self.ofs) - rofs)?;
        let size = to_i64(i128::from(self.size) + rofs)?;
        (self.ofs, self.size) = (ofs, size);
        Ok(())
    }

    /// Moves the end towards the start of `window`, the neighbour on the
    /// right, without making the window larger than `max_size`.
    fn extend_right_to(&mut self, window: &Bound<'_, PyAny>, max_size: AnyInt) -> PyResult<()> {
        let (wofs, _) = window_of(window)?;
        let size = (i128::from(self.size) + (wofs - self.end())).min(clamp64(max_size.0));
        self.size = to_i64(size)?;
        Ok(())
    }

    /// A short description, for debugging.
    fn __repr__(&self) -> String {
        format!("MapWindow({}, {})", self.ofs, self.size)
    }
}
