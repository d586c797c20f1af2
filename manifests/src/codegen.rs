//! TODO
/// TODO
pub fn to_rust(_m: &crate::Manifest) -> alloc::string::String {
    alloc::string::String::new()
}
