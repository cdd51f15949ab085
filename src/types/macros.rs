//! Macros for the shapes pydantic gives the wire types: string enums, single-value tag fields,
//! and unions discriminated by a tag that the variant types keep as their own field.

/// A string enum with `as_str`, `parse`, `ALL` and `Display`.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

/// A field that can hold one string only (pydantic's `Literal["x"] = "x"`), e.g. a message's
/// `role` or a tool definition's `type`. It defaults to its value when absent.
macro_rules! literal {
    ($(#[$m:meta])* $name:ident = $wire:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            #[default]
            #[serde(rename = $wire)]
            Value,
        }

        impl $name {
            pub const fn as_str(self) -> &'static str {
                $wire
            }
        }
    };
}
pub(crate) use literal;

/// A union discriminated on `$tag`. Each variant's type keeps the tag as a `literal!` field,
/// so the variant types also stand alone (as pydantic's do). Reading requires the tag.
macro_rules! tagged_union {
    ($(#[$m:meta])* $name:ident, tag = $tag:literal, { $($variant:ident($ty:ty) = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        #[serde(untagged)]
        pub enum $name {
            $($variant($ty)),+
        }

        impl $name {
            /// The tag values this union accepts.
            pub const TAGS: &'static [&'static str] = &[$($wire),+];

            pub fn tag(&self) -> &'static str {
                match self { $(Self::$variant(_) => $wire),+ }
            }

            /// Reads a variant from a JSON value whose tag is already present.
            pub fn from_value(v: serde_json::Value) -> Result<Self, String> {
                let tag = match v.get($tag) {
                    Some(serde_json::Value::String(t)) => t.clone(),
                    Some(_) => return Err(format!("field `{}` must be a string", $tag)),
                    None => return Err(format!(
                        "missing field `{}` (one of: {})", $tag, Self::TAGS.join(", ")
                    )),
                };
                match tag.as_str() {
                    $($wire => serde_json::from_value::<$ty>(v).map(Self::$variant).map_err(|e| e.to_string()),)+
                    other => Err(format!(
                        "unknown {} `{}` (expected one of: {})", $tag, other, Self::TAGS.join(", ")
                    )),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
                Self::from_value(v).map_err(<D::Error as serde::de::Error>::custom)
            }
        }
    };
}
pub(crate) use tagged_union;
