"""Type stubs for the compiled core (``llama_stack._core``)."""

from typing import List, Optional, Tuple, Union, final

__version__: str
__all__ = [
    "__version__", "EventStream", "Stack", "check_run_config", "download_model", "embed_sentences", "provider_types",
    "roundtrip", "schema_names", "serve",
    "augment_messages", "decode_assistant_message", "detokenize", "render_chat_prompt", "render_messages", "stream_events", "tokenize",
    "tokenize_messages",
]

def roundtrip(schema: str, data: bytes) -> bytes:
    """Reads ``data`` (JSON) as the named wire schema and writes it back."""

def schema_names() -> List[str]:
    """Names of every wire schema the core can read."""

def check_run_config(config_yaml: str, source: str = "run config") -> str:
    """Checks a run config and returns it as JSON with provider defaults filled in."""

def download_model(model_id: str) -> str:
    """Fetches a model into ``<config dir>/checkpoints/<model_id>/`` unless it is there; returns its path."""

def embed_sentences(model_dir: str, texts: List[str]) -> List[List[float]]:
    """Embeds ``texts`` with the sentence-embedding model in ``model_dir`` (loaded once per folder): one unit vector per text."""

def augment_messages(request_json: str, llama_model: str, today: Optional[str] = None) -> str:
    """The messages (JSON list) a model sees for a chat request: its own plus the family's system and tool prompts."""

def render_chat_prompt(request_json: str, llama_model: str, today: Optional[str] = None) -> str:
    """The Llama prompt text for a chat completion request (JSON) and model descriptor; ``today`` is ``YYYY-MM-DD``."""

def render_messages(messages_json: str, tool_prompt_format: str = "json") -> str:
    """The dialog prompt text for a JSON list of messages, ending with an open assistant header."""

def decode_assistant_message(text: str, stop_reason: str) -> str:
    """Parses model output into an assistant message (JSON), with at most one tool call."""

def stream_events(chunks: List[str], stop_reason: Optional[str] = None) -> str:
    """The chat completion stream events (a JSON list) for model text delivered in ``chunks``."""

def tokenize(path: str, text: str, allow_special: bool = True) -> List[int]:
    """Llama 3 token ids of ``text``, with the tokenizer.model file at ``path``."""

def tokenize_messages(path: str, messages_json: str, tool_prompt_format: str = "json") -> List[int]:
    """Llama 3 token ids of the dialog prompt for a JSON list of messages."""

def detokenize(path: str, ids: List[int]) -> str:
    """Text of Llama 3 token ids."""

def provider_types() -> str:
    """Every provider type with its config fields, as a JSON list."""

def serve(
    config_yaml: str,
    host: Optional[str] = None,
    port: int = 5000,
    disable_ipv6: bool = False,
    source: str = "run config",
) -> None:
    """Builds the stack and serves it over HTTP until SIGINT or SIGTERM."""

@final
class EventStream:
    """Async iterator of JSON documents, one per streamed event."""

    def __aiter__(self) -> "EventStream": ...
    async def __anext__(self) -> bytes: ...
    async def aclose(self) -> None: ...

@final
class Stack:
    """A stack built from a run config, running in this process."""

    @staticmethod
    async def build(config_yaml: str, source: str = "run config") -> "Stack": ...
    async def call(
        self,
        path: str,
        method: str,
        body: Optional[bytes] = None,
        query: Optional[List[Tuple[str, str]]] = None,
        provider_data: Optional[str] = None,
    ) -> Union[bytes, EventStream]: ...
    async def shutdown(self) -> None: ...
