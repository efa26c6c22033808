//! `buf[i]` and `buf[a:b]` at the standard library's speed.
//!
//! A hit — the cursor's current region holds the bytes — is a few loads and
//! one copy, less than PyO3's per-call work (entering its trampoline, the
//! thread's attach count, the check of `self`'s type). So the class Python
//! sees as `SlidingWindowMapBuffer` is a subclass of PyO3's class, made with
//! `PyType_FromSpecWithBases` (stable ABI), whose only own slot is
//! `mp_subscript`: a plain C function that answers a hit for an `int` or a
//! slice key, and hands anything else — a miss, another thread holding the
//! state, an index out of range, a stride, an `__index__` object — to the
//! same code PyO3's `__getitem__` runs. Everything else (the other methods,
//! construction, the state guards, `__traverse__`) is inherited unchanged.
//!
//! The fast path takes no state it must wait for (it gives up instead) and
//! runs no Python code while it holds one, as everywhere (see `guard`). What
//! it hands to the slow path runs inside PyO3's count of attached calls
//! ([`counted`]), and so do its own errors: outside it a `Py` dropped would
//! be queued for another thread to give back.
//!
//! The slot is entered attached, whatever the interpreter's state: a
//! finalizer may slice a buffer while the interpreter shuts down, when
//! `Python::attach` would refuse (and panic). So the slot assumes the
//! attachment it has, and turns a panic into PyO3's `PanicException`.

use std::ffi::{c_void, CString};
use std::os::raw::c_long;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::OnceLock;

use pyo3::exceptions::PySystemError;
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PySlice, PyTuple, PyType};

use crate::args::{int_value, SliceBounds};
use crate::buffer::PyBuffer;
use crate::region::copy_bytes;

/// The name the public class has (module and qualified name).
const PUBLIC_NAME: &std::ffi::CStr = c"smmap.buf.SlidingWindowMapBuffer";

/// PyO3's `mp_subscript` of the implementation class: everything the fast
/// path does not answer.
static SLOW_SUBSCRIPT: OnceLock<ffi::binaryfunc> = OnceLock::new();

/// What the fast path made of a key.
enum Fast {
    /// The result (or NULL with the exception set).
    Done(*mut ffi::PyObject),
    /// A slice whose bounds are read (their `__index__` ran): served by the
    /// slow path, without reading them again.
    Slice(SliceBounds),
    /// Left to PyO3's `__getitem__` as it is.
    NotHandled,
}

/// The public class: a subclass of `base` (PyO3's `SlidingWindowMapBuffer`)
/// with the fast `mp_subscript`, the same documentation and signature.
pub(crate) fn public_buffer_type<'py>(base: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyType>> {
    let py = base.py();
    // SAFETY: `base` is a heap type (PyO3 makes its classes with
    // PyType_FromSpec), for which PyType_GetSlot works on every version.
    let slow = unsafe { ffi::PyType_GetSlot(base.as_type_ptr(), ffi::Py_mp_subscript) };
    if slow.is_null() {
        return Err(PySystemError::new_err(
            "SlidingWindowMapBuffer has no __getitem__",
        ));
    }
    // SAFETY: the Py_mp_subscript slot holds a binaryfunc.
    let slow: ffi::binaryfunc =
        unsafe { std::mem::transmute::<*mut c_void, ffi::binaryfunc>(slow) };
    let _ = SLOW_SUBSCRIPT.set(slow);

    // "Name(signature)\n--\n\n" is where Python finds `__text_signature__`.
    let signature: String = base.getattr("__text_signature__")?.extract()?;
    let doc: String = base.getattr("__doc__")?.extract()?;
    let doc = CString::new(format!("SlidingWindowMapBuffer{signature}\n--\n\n{doc}"))
        .map_err(|e| PySystemError::new_err(e.to_string()))?;
    let mut slots = [
        ffi::PyType_Slot {
            slot: ffi::Py_mp_subscript,
            pfunc: subscript as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: doc.as_ptr() as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: ptr::null_mut(),
        },
    ];
    let mut spec = ffi::PyType_Spec {
        name: PUBLIC_NAME.as_ptr(),
        // 0: the base's size (the layout is the base's); the collector
        // support and every other slot are inherited.
        basicsize: 0,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_BASETYPE) as _,
        slots: slots.as_mut_ptr(),
    };
    let bases = PyTuple::new(py, [base])?;
    // SAFETY: `spec` and its slots are valid for the call (Python copies the
    // name and the documentation); `bases` is a tuple of one heap type.
    let ty = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpecWithBases(&mut spec, bases.as_ptr()))
    }?;
    Ok(ty.cast_into::<PyType>()?)
}

/// `mp_subscript` of the public class.
///
/// # Safety
///
/// Called by Python, attached, with `slf` an instance of the public class
/// (or a subclass of it) and `key` any object.
unsafe extern "C" fn subscript(
    slf: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: Python calls the slot attached (see the function's contract).
    let py = unsafe { Python::assume_attached() };
    // A panic must not cross into C.
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: see the function's contract.
        match unsafe { fast(slf, key) } {
            Fast::Done(result) => Some(result),
            Fast::Slice(bounds) => {
                // SAFETY: as above; the instance is a `PyBuffer`.
                let buf = unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<PyBuffer>() };
                Some(counted(py, |py| match buf.get().slice(py, bounds) {
                    Ok(bytes) => bytes.into_ptr(),
                    Err(e) => {
                        e.restore(py);
                        ptr::null_mut()
                    }
                }))
            }
            Fast::NotHandled => None,
        }
    }));
    match answer {
        Ok(Some(result)) => result,
        Ok(None) => {
            let slow = SLOW_SUBSCRIPT.get().expect("set before the class exists");
            // SAFETY: PyO3's slot of the base class, called as Python would.
            unsafe { slow(slf, key) }
        }
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic in SlidingWindowMapBuffer.__getitem__".to_owned());
            restore(py, PanicException::new_err(msg));
            ptr::null_mut()
        }
    }
}

/// Runs `f` inside PyO3's count of attached calls. Outside it — in this
/// slot — a `Py` dropped (a cursor's reference, an error's type or value,
/// a file name made for an error) goes to PyO3's process-wide pool, to be
/// given back later by whichever thread next comes back from `detach`,
/// perhaps holding a state. While the interpreter shuts down `try_attach`
/// refuses, and `f` runs as it is (the pool the only way then).
fn counted<T>(py: Python<'_>, f: impl for<'py> FnOnce(Python<'py>) -> T) -> T {
    let mut f = Some(f);
    if let Some(out) = Python::try_attach(|py| f.take().map(|f| f(py))).flatten() {
        return out;
    }
    let f = f
        .take()
        .expect("not run: the interpreter refused to attach");
    f(py)
}

/// Raises `e` inside PyO3's count of attached calls (see [`counted`]):
/// making the exception drops its type and value.
fn restore(py: Python<'_>, e: PyErr) {
    counted(py, |py| e.restore(py));
}

/// The hit paths.
///
/// # Safety
///
/// As [`subscript`].
unsafe fn fast(slf: *mut ffi::PyObject, key: *mut ffi::PyObject) -> Fast {
    // SAFETY: the caller is attached.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: the public class's instances are `PyBuffer`s; `key` is a live
    // reference for the call.
    let (buf, key) = unsafe {
        (
            Borrowed::from_ptr(py, slf).cast_unchecked::<PyBuffer>(),
            Borrowed::from_ptr(py, key),
        )
    };
    if let Ok(int) = key.cast_exact::<pyo3::types::PyInt>() {
        let i = int_value(&int);
        let Some(st) = buf.get().try_state() else {
            return Fast::NotHandled;
        };
        let (Some(abs), Some(cursor)) = (st.absolute_in_range(i), st.cursor.as_ref()) else {
            return Fast::NotHandled;
        };
        let Some(mut c) = cursor.get().try_state() else {
            return Fast::NotHandled;
        };
        if !c.inner.holds(abs, 1) {
            return Fast::NotHandled;
        }
        let Ok(byte) = c.inner.byte_at(abs) else {
            return Fast::NotHandled;
        };
        drop(c);
        drop(st);
        // SAFETY: plain constructor (a cached small int).
        return Fast::Done(unsafe { ffi::PyLong_FromLong(c_long::from(byte)) });
    }
    let Ok(slice) = key.cast_exact::<PySlice>() else {
        return Fast::NotHandled;
    };
    // `__index__` of the bounds may run here: no state is held yet.
    let bounds = match SliceBounds::unpack(&slice) {
        Ok(b) => b,
        Err(e) => {
            restore(py, e);
            return Fast::Done(ptr::null_mut());
        }
    };
    let Some(st) = buf.get().try_state() else {
        return Fast::Slice(bounds);
    };
    let ind = bounds.adjust(st.len);
    if ind.count == 0 {
        drop(st);
        // SAFETY: an empty `bytes` from no data.
        return Fast::Done(unsafe { ffi::PyBytes_FromStringAndSize(ptr::null(), 0) });
    }
    if ind.step != 1 && ind.count > 1 {
        return Fast::Slice(bounds);
    }
    let abs = st.offset + ind.start;
    let Some(mut c) = st.cursor.as_ref().and_then(|c| c.get().try_state()) else {
        return Fast::Slice(bounds);
    };
    if !c.inner.holds(abs, ind.count) {
        return Fast::Slice(bounds);
    }
    let Ok(chunk) = c.inner.chunk_at(abs) else {
        return Fast::Slice(bounds);
    };
    let n = ind.count as usize;
    if chunk.len() < n {
        return Fast::Slice(bounds);
    }
    // The bytes are copied while the cursor's state is held: making a
    // `bytes` object runs no Python code. One Python cannot allocate is
    // left to the slow path, whose `MemoryError` names the file and offset.
    match copy_bytes(py, &chunk[..n]) {
        Some(bytes) => Fast::Done(bytes.into_ptr()),
        None => Fast::Slice(bounds),
    }
}
