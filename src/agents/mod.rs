//! The agents API: the turn executor, its built-in tools and the persistence of agents,
//! sessions and turns.

pub mod tools;
