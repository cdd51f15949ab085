//! The Python extension `llama_stack._core`. Every `#[pyclass]` and `#[pyfunction]` lives under
//! this module, one file per Python module it serves; the core above never sees Python. See
//! docs/bindings.md for the choices made.

mod bridge;
mod embed;
mod errors;
mod models;
mod prompt;
mod schema;
mod server;
mod stack;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(models::download_model, m)?)?;
    m.add_function(wrap_pyfunction!(embed::embed_sentences, m)?)?;
    m.add_function(wrap_pyfunction!(prompt::augment_messages, m)?)?;
    m.add_function(wrap_pyfunction!(prompt::render_chat_prompt, m)?)?;
    m.add_function(wrap_pyfunction!(prompt::render_messages, m)?)?;
    m.add_function(wrap_pyfunction!(prompt::decode_assistant_message, m)?)?;
    m.add_function(wrap_pyfunction!(prompt::stream_events, m)?)?;
    m.add_function(wrap_pyfunction!(prompt::tokenize, m)?)?;
    m.add_function(wrap_pyfunction!(prompt::tokenize_messages, m)?)?;
    m.add_function(wrap_pyfunction!(prompt::detokenize, m)?)?;
    m.add_function(wrap_pyfunction!(schema::roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(schema::schema_names, m)?)?;
    m.add_function(wrap_pyfunction!(server::check_run_config, m)?)?;
    m.add_function(wrap_pyfunction!(server::provider_types, m)?)?;
    m.add_function(wrap_pyfunction!(server::serve, m)?)?;
    m.add_class::<stack::PyStack>()?;
    m.add_class::<stack::EventStream>()?;
    // Runs before the interpreter finalizes (atexit hooks run first), whether or not the
    // program closed its stacks; see docs/bindings.md.
    let hook = wrap_pyfunction!(bridge::release_at_exit, m)?;
    m.py().import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}
