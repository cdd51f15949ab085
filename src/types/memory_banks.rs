//! `llama_stack.apis.memory_banks`: the bank definitions, a union on `type`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::macros::{literal, string_enum, tagged_union};

literal!(VectorTag = "vector");
literal!(KeyvalueTag = "keyvalue");
literal!(KeywordTag = "keyword");
literal!(GraphTag = "graph");

string_enum!(MemoryBankType { Vector = "vector", Keyvalue = "keyvalue", Keyword = "keyword", Graph = "graph" });

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorMemoryBankDef {
    #[serde(rename = "type", default)]
    pub bank_type: VectorTag,
    pub identifier: String,
    #[serde(default)]
    pub provider_id: String,
    pub embedding_model: String,
    pub chunk_size_in_tokens: i64,
    #[serde(default)]
    pub overlap_size_in_tokens: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValueMemoryBankDef {
    #[serde(rename = "type", default)]
    pub bank_type: KeyvalueTag,
    pub identifier: String,
    #[serde(default)]
    pub provider_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeywordMemoryBankDef {
    #[serde(rename = "type", default)]
    pub bank_type: KeywordTag,
    pub identifier: String,
    #[serde(default)]
    pub provider_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphMemoryBankDef {
    #[serde(rename = "type", default)]
    pub bank_type: GraphTag,
    pub identifier: String,
    #[serde(default)]
    pub provider_id: String,
}

tagged_union!(
    /// `MemoryBankDef` (also `MemoryBankDefWithProvider`): discriminated on `type`.
    MemoryBankDefTagged, tag = "type", {
        Vector(VectorMemoryBankDef) = "vector",
        Keyvalue(KeyValueMemoryBankDef) = "keyvalue",
        Keyword(KeywordMemoryBankDef) = "keyword",
        Graph(GraphMemoryBankDef) = "graph",
    }
);

/// A bank definition. On input a missing `type` is taken as `vector` when an `embedding_model`
/// is given, as the example apps of this era sent it that way.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct MemoryBankDef(pub MemoryBankDefTagged);

impl<'de> Deserialize<'de> for MemoryBankDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut v = Value::deserialize(d)?;
        if let Value::Object(map) = &mut v {
            if !map.contains_key("type") && map.contains_key("embedding_model") {
                map.insert("type".into(), Value::String("vector".into()));
            }
            if !map.contains_key("type") {
                return Err(D::Error::custom("missing field `type` (one of vector, keyvalue, keyword, graph)"));
            }
        }
        MemoryBankDefTagged::from_value(v).map(Self).map_err(D::Error::custom)
    }
}

impl MemoryBankDef {
    pub fn identifier(&self) -> &str {
        match &self.0 {
            MemoryBankDefTagged::Vector(b) => &b.identifier,
            MemoryBankDefTagged::Keyvalue(b) => &b.identifier,
            MemoryBankDefTagged::Keyword(b) => &b.identifier,
            MemoryBankDefTagged::Graph(b) => &b.identifier,
        }
    }

    pub fn provider_id(&self) -> &str {
        match &self.0 {
            MemoryBankDefTagged::Vector(b) => &b.provider_id,
            MemoryBankDefTagged::Keyvalue(b) => &b.provider_id,
            MemoryBankDefTagged::Keyword(b) => &b.provider_id,
            MemoryBankDefTagged::Graph(b) => &b.provider_id,
        }
    }

    pub fn set_provider_id(&mut self, id: &str) {
        let slot = match &mut self.0 {
            MemoryBankDefTagged::Vector(b) => &mut b.provider_id,
            MemoryBankDefTagged::Keyvalue(b) => &mut b.provider_id,
            MemoryBankDefTagged::Keyword(b) => &mut b.provider_id,
            MemoryBankDefTagged::Graph(b) => &mut b.provider_id,
        };
        id.clone_into(slot);
    }

    pub fn bank_type(&self) -> MemoryBankType {
        match &self.0 {
            MemoryBankDefTagged::Vector(_) => MemoryBankType::Vector,
            MemoryBankDefTagged::Keyvalue(_) => MemoryBankType::Keyvalue,
            MemoryBankDefTagged::Keyword(_) => MemoryBankType::Keyword,
            MemoryBankDefTagged::Graph(_) => MemoryBankType::Graph,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterMemoryBankRequest {
    pub memory_bank: MemoryBankDef,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_type_with_embedding_model_is_vector() {
        let b: MemoryBankDef = serde_json::from_str(
            r#"{"identifier":"b","embedding_model":"all-MiniLM-L6-v2","chunk_size_in_tokens":512,"provider_id":"p"}"#,
        )
        .unwrap();
        assert_eq!(b.bank_type(), MemoryBankType::Vector);
        assert_eq!(serde_json::to_value(&b).unwrap()["type"], "vector");
        assert!(serde_json::from_str::<MemoryBankDef>(r#"{"identifier":"b"}"#).is_err());
    }
}
