//! `mirrorctl verify`: prove that pulls come from the mirror and from its cache.

pub mod evidence;
pub mod hosts;
