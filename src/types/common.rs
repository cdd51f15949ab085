//! Types that upstream takes from `llama_models` (messages, tool calls, sampling) and the few
//! shared helpers every API uses. Field names, defaults and tags follow pydantic's JSON form.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A free-form JSON object (`Dict[str, Any]` upstream).
pub type JsonObject = Map<String, Value>;

/// `URL` travels as pydantic dumps it, `{"uri": "..."}`. The spec calls it a plain string and the
/// official client sends one, so a bare string is accepted too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Url {
    pub uri: String,
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Bare(String),
            Object { uri: String },
        }
        let (Form::Bare(uri) | Form::Object { uri }) = Form::deserialize(d)
            .map_err(|_| D::Error::custom("expected a URL: a string or an object {\"uri\": ...}"))?;
        Ok(Self { uri })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

/// What `ImageMedia.image` holds: a URL, or the description pydantic gives of an in-memory image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageSource {
    Url(Url),
    Inline {
        #[serde(default)]
        format: Option<String>,
        #[serde(default)]
        format_description: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageMedia {
    pub image: ImageSource,
}

/// Read only from a JSON object: serde's derived reader would also take a one-item array, and
/// inside the untagged unions below that turned `["text"]` into an image.
impl<'de> Deserialize<'de> for ImageMedia {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            image: ImageSource,
        }
        match Value::deserialize(d)? {
            v @ Value::Object(_) => {
                serde_json::from_value::<Fields>(v).map(|f| Self { image: f.image }).map_err(D::Error::custom)
            }
            _ => Err(D::Error::custom("expected an image object {\"image\": ...}")),
        }
    }
}

/// One item of an interleaved list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MediaItem {
    Text(String),
    Image(ImageMedia),
}

/// `InterleavedTextMedia`: a string, one image, or a list mixing both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InterleavedTextMedia {
    Text(String),
    List(Vec<MediaItem>),
    Image(ImageMedia),
}

impl Default for InterleavedTextMedia {
    fn default() -> Self {
        Self::Text(String::new())
    }
}

impl From<String> for InterleavedTextMedia {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&str> for InterleavedTextMedia {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl InterleavedTextMedia {
    /// Text with every image replaced by `<media>`, list items joined by `sep`.
    pub fn as_text(&self, sep: &str) -> String {
        fn item(i: &MediaItem) -> &str {
            match i {
                MediaItem::Text(t) => t,
                MediaItem::Image(_) => "<media>",
            }
        }
        match self {
            Self::Text(t) => t.clone(),
            Self::Image(_) => "<media>".to_owned(),
            Self::List(items) => items.iter().map(item).collect::<Vec<_>>().join(sep),
        }
    }

    pub fn has_media(&self) -> bool {
        match self {
            Self::Text(_) => false,
            Self::Image(_) => true,
            Self::List(items) => items.iter().any(|i| matches!(i, MediaItem::Image(_))),
        }
    }
}

use super::macros::{literal, string_enum, tagged_union};

string_enum!(Role { System = "system", User = "user", Assistant = "assistant", Ipython = "ipython" });
string_enum!(BuiltinTool {
    BraveSearch = "brave_search",
    WolframAlpha = "wolfram_alpha",
    Photogen = "photogen",
    CodeInterpreter = "code_interpreter",
});
string_enum!(ToolChoice { Auto = "auto", Required = "required" });
string_enum!(ToolPromptFormat { Json = "json", FunctionTag = "function_tag", PythonList = "python_list" });
string_enum!(StopReason {
    EndOfTurn = "end_of_turn",
    EndOfMessage = "end_of_message",
    OutOfTokens = "out_of_tokens",
});
string_enum!(SamplingStrategy { Greedy = "greedy", TopP = "top_p", TopK = "top_k" });

#[allow(clippy::derivable_impls, reason = "string_enum! cannot mark a default variant")]
impl Default for ToolChoice {
    fn default() -> Self {
        Self::Auto
    }
}
#[allow(clippy::derivable_impls, reason = "string_enum! cannot mark a default variant")]
impl Default for ToolPromptFormat {
    fn default() -> Self {
        Self::Json
    }
}
#[allow(clippy::derivable_impls, reason = "string_enum! cannot mark a default variant")]
impl Default for SamplingStrategy {
    fn default() -> Self {
        Self::Greedy
    }
}

/// `Union[BuiltinTool, str]`: a name equal to a built-in tool becomes that tool, as upstream's
/// validator does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ToolName {
    Builtin(BuiltinTool),
    Custom(String),
}

impl ToolName {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Builtin(b) => b.as_str(),
            Self::Custom(s) => s,
        }
    }
}

impl From<&str> for ToolName {
    fn from(s: &str) -> Self {
        BuiltinTool::parse(s).map_or_else(|| Self::Custom(s.to_owned()), Self::Builtin)
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ToolName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ToolName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::from(s.as_str()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub call_id: String,
    pub tool_name: ToolName,
    pub arguments: JsonObject,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResponse {
    pub call_id: String,
    pub tool_name: ToolName,
    pub content: InterleavedTextMedia,
}

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn default_true() -> Option<bool> {
    Some(true)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolParamDefinition {
    pub param_type: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_true")]
    pub required: Option<bool>,
    #[serde(default)]
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub tool_name: ToolName,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<indexmap::IndexMap<String, ToolParamDefinition>>,
}

literal!(UserRole = "user");
literal!(SystemRole = "system");
literal!(IpythonRole = "ipython");
literal!(AssistantRole = "assistant");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserMessage {
    #[serde(default)]
    pub role: UserRole,
    pub content: InterleavedTextMedia,
    #[serde(default)]
    pub context: Option<InterleavedTextMedia>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemMessage {
    #[serde(default)]
    pub role: SystemRole,
    pub content: InterleavedTextMedia,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResponseMessage {
    #[serde(default)]
    pub role: IpythonRole,
    pub call_id: String,
    pub tool_name: ToolName,
    pub content: InterleavedTextMedia,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionMessage {
    #[serde(default)]
    pub role: AssistantRole,
    pub content: InterleavedTextMedia,
    pub stop_reason: StopReason,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
}

tagged_union!(
    /// `Message`: the union discriminated on `role`.
    Message, tag = "role", {
        User(UserMessage) = "user",
        System(SystemMessage) = "system",
        Ipython(ToolResponseMessage) = "ipython",
        Assistant(CompletionMessage) = "assistant",
    }
);

impl Message {
    pub fn role(&self) -> Role {
        match self {
            Self::User(_) => Role::User,
            Self::System(_) => Role::System,
            Self::Ipython(_) => Role::Ipython,
            Self::Assistant(_) => Role::Assistant,
        }
    }

    pub fn content(&self) -> &InterleavedTextMedia {
        match self {
            Self::User(m) => &m.content,
            Self::System(m) => &m.content,
            Self::Ipython(m) => &m.content,
            Self::Assistant(m) => &m.content,
        }
    }
}

tagged_union!(
    /// A message a user may send into an agent turn: `Union[UserMessage, ToolResponseMessage]`.
    TurnInputMessage, tag = "role", {
        User(UserMessage) = "user",
        Ipython(ToolResponseMessage) = "ipython",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogProbs {
    pub logprobs_by_token: indexmap::IndexMap<String, f64>,
}

#[allow(clippy::unnecessary_wraps, reason = "serde default for an Optional field")]
fn some<T>(v: T) -> Option<T> {
    Some(v)
}

/// `SamplingParams`; every field is optional on the wire with upstream's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    #[serde(default)]
    pub strategy: SamplingStrategy,
    #[serde(default = "SamplingParams::default_temperature")]
    pub temperature: Option<f64>,
    #[serde(default = "SamplingParams::default_top_p")]
    pub top_p: Option<f64>,
    #[serde(default = "SamplingParams::default_top_k")]
    pub top_k: Option<i64>,
    #[serde(default = "SamplingParams::default_max_tokens")]
    pub max_tokens: Option<i64>,
    #[serde(default = "SamplingParams::default_repetition_penalty")]
    pub repetition_penalty: Option<f64>,
}

impl SamplingParams {
    fn default_temperature() -> Option<f64> {
        some(0.0)
    }
    fn default_top_p() -> Option<f64> {
        some(0.95)
    }
    fn default_top_k() -> Option<i64> {
        some(0)
    }
    fn default_max_tokens() -> Option<i64> {
        some(0)
    }
    fn default_repetition_penalty() -> Option<f64> {
        some(1.0)
    }
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            strategy: SamplingStrategy::Greedy,
            temperature: Self::default_temperature(),
            top_p: Self::default_top_p(),
            top_k: Self::default_top_k(),
            max_tokens: Self::default_max_tokens(),
            repetition_penalty: Self::default_repetition_penalty(),
        }
    }
}

/// A timestamp kept as the exact text it arrived in, so a round trip changes nothing; new ones
/// are written the way pydantic writes an aware UTC datetime.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Timestamp(String);

impl Timestamp {
    pub fn now() -> Self {
        Self(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts ISO 8601 with or without an offset, as pydantic does.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = chrono::DateTime::parse_from_rfc3339(s).is_ok()
            || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
            || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").is_ok()
            || chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok();
        ok.then(|| Self(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| D::Error::custom(format!("invalid datetime `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_name_coerces_builtins() {
        let t: ToolName = serde_json::from_str("\"brave_search\"").unwrap();
        assert_eq!(t, ToolName::Builtin(BuiltinTool::BraveSearch));
        let t: ToolName = serde_json::from_str("\"get_weather\"").unwrap();
        assert_eq!(t, ToolName::Custom("get_weather".into()));
    }

    #[test]
    fn url_accepts_string_and_object() {
        let a: Url = serde_json::from_str("\"https://x\"").unwrap();
        let b: Url = serde_json::from_str("{\"uri\":\"https://x\"}").unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "{\"uri\":\"https://x\"}");
    }

    #[test]
    fn message_union_by_role() {
        let m: Message = serde_json::from_str(r#"{"role":"user","content":["a",{"image":{"uri":"data:x"}}]}"#).unwrap();
        assert_eq!(m.content().as_text(" "), "a <media>");
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["role"], "user");
        assert!(back["context"].is_null());
    }

    #[test]
    fn sampling_defaults_match_upstream() {
        let s: SamplingParams = serde_json::from_str("{}").unwrap();
        assert_eq!(s, SamplingParams::default());
        let s: SamplingParams = serde_json::from_str(r#"{"temperature":null}"#).unwrap();
        assert_eq!(s.temperature, None);
    }

    #[test]
    fn timestamps_round_trip_verbatim() {
        let t: Timestamp = serde_json::from_str("\"2024-10-10T12:00:00\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2024-10-10T12:00:00\"");
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
        assert!(Timestamp::parse(Timestamp::now().as_str()).is_some());
    }
}
