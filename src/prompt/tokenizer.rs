//! The Llama 3 tokenizer: tiktoken BPE over the ranks in `llama_models`' `tokenizer.model`, with
//! Llama 3's split pattern and its 256 special tokens numbered after the base vocabulary.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use base64::Engine as _;
use tiktoken_rs::CoreBPE;

use super::render::{self, IMAGE, Piece};
use crate::error::{Error, Result};
use crate::types::common::{Message, ToolPromptFormat};

/// Llama 3's pre-tokenization pattern.
const PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The named special tokens, in id order; reserved ones fill the rest of the 256.
const NAMED_SPECIALS: [&str; 12] = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|step_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
    "<|image|>",
];
const NUM_SPECIALS: usize = 256;

/// Texts are cut before encoding so that no run of spaces or non-spaces exceeds this many
/// characters (the regex engine's backtracking limit), and into slices of at most
/// `MAX_ENCODE_CHARS`; the cut points are where the reference tokenizer makes them.
const MAX_ENCODE_CHARS: usize = 400_000;
const MAX_RUN_CHARS: usize = 25_000;

/// The id the vision model sees in place of `<|image|>`; decoded as `<|image|>`.
pub const VISION_TOKEN_ID: u32 = 128_256;

pub struct Llama3Tokenizer {
    bpe: CoreBPE,
    specials: HashMap<String, u32>,
    special_text: HashMap<u32, String>,
    base_bytes: HashMap<u32, Vec<u8>>,
}

impl std::fmt::Debug for Llama3Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llama3Tokenizer")
            .field("vocab", &(self.base_bytes.len() + self.specials.len()))
            .finish_non_exhaustive()
    }
}

impl Llama3Tokenizer {
    /// Loads a tiktoken ranks file: one `<base64 token> <rank>` per line.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = fs_err::read_to_string(path)?;
        let bad = |line: usize, what: &str| {
            Error::invalid(format!("tokenizer file `{}` line {line}: {what}", path.display()))
        };
        let engine = base64::engine::general_purpose::STANDARD;
        let mut ranks: Vec<(Vec<u8>, u32)> = Vec::new();
        let mut line_of = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            let mut parts = line.split_whitespace();
            let (Some(tok), Some(rank), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad(n + 1, "expected `<base64 token> <rank>`"));
            };
            let bytes = engine.decode(tok).map_err(|e| bad(n + 1, &format!("token is not base64: {e}")))?;
            let rank: u32 = rank.parse().map_err(|_| bad(n + 1, "rank is not a number"))?;
            ranks.push((bytes, rank));
            line_of.push(n + 1);
        }
        let mut seen_ranks = HashSet::new();
        let mut seen_tokens = HashSet::new();
        for (i, (bytes, rank)) in ranks.iter().enumerate() {
            if !seen_ranks.insert(*rank) || !seen_tokens.insert(bytes.as_slice()) {
                return Err(bad(line_of[i], "token or rank appears twice"));
            }
        }
        let base = u32::try_from(ranks.len()).map_err(|_| Error::invalid("tokenizer file: too many tokens"))?;
        let mut specials = HashMap::new();
        for i in 0..NUM_SPECIALS {
            let name = NAMED_SPECIALS.get(i).map_or_else(
                || format!("<|reserved_special_token_{}|>", 2 + i - NAMED_SPECIALS.len()),
                |s| (*s).to_owned(),
            );
            specials.insert(name, base + u32::try_from(i).unwrap_or(u32::MAX));
        }
        let special_text = specials.iter().map(|(k, v)| (*v, k.clone())).collect();
        let base_bytes = ranks.iter().map(|(b, r)| (*r, b.clone())).collect();
        let bpe = CoreBPE::new(ranks.into_iter().collect(), specials.clone().into_iter().collect(), PATTERN)
            .map_err(|e| Error::internal(format!("cannot build the tokenizer from `{}`: {e}", path.display())))?;
        Ok(Self { bpe, specials, special_text, base_bytes })
    }

    /// The id of a special token such as `<|eot_id|>`.
    pub fn special_id(&self, token: &str) -> Option<u32> {
        self.specials.get(token).copied()
    }

    /// Token ids of `text`. With `allow_special` the texts of special tokens become those
    /// tokens; without it they are encoded as ordinary text (as message contents are).
    pub fn encode(&self, text: &str, allow_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        for slice in chunks(text) {
            if allow_special {
                out.extend(self.bpe.encode_with_special_tokens(slice));
            } else {
                out.extend(self.bpe.encode_ordinary(slice));
            }
        }
        out
    }

    /// Text of `ids`; invalid UTF-8 becomes U+FFFD and ids outside the vocabulary are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for id in ids {
            if let Some(b) = self.base_bytes.get(id) {
                bytes.extend_from_slice(b);
            } else if let Some(t) = self.special_text.get(id) {
                bytes.extend_from_slice(t.as_bytes());
            } else if *id == VISION_TOKEN_ID {
                bytes.extend_from_slice(IMAGE.as_bytes());
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The token ids of a dialog prompt, each piece encoded on its own as the reference chat
    /// format does (so they can differ from encoding the joined text). Images stay `<|image|>`.
    pub fn encode_dialog(&self, messages: &[Message], fmt: ToolPromptFormat) -> Vec<u32> {
        let mut out = Vec::new();
        for piece in render::dialog_pieces(messages, fmt) {
            match piece {
                Piece::Special(s) => out.extend(self.special_id(s)),
                Piece::Text(t) => out.extend(self.encode(&t, false)),
            }
        }
        out
    }
}

/// Python's `str.isspace`, which also counts the ASCII information separators.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The slices the reference tokenizer encodes separately: 400k-character windows, each cut so
/// that no run of spaces or of non-spaces is longer than 25k characters.
fn chunks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len())).collect();
    let nchars = bounds.len() - 1;
    let mut w = 0;
    loop {
        let end = (w + MAX_ENCODE_CHARS).min(nchars);
        let window = &text[bounds[w]..bounds[end]];
        split_runs(window, &mut out);
        w = end;
        if w >= nchars {
            break;
        }
    }
    out
}

fn split_runs<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    let mut run_len = 0usize;
    let mut run_is_space = s.chars().next().is_some_and(py_isspace);
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let space = py_isspace(c);
        if space == run_is_space {
            run_len += 1;
            if run_len > MAX_RUN_CHARS {
                out.push(&s[start..i]);
                start = i;
                run_len = 1;
            }
        } else {
            run_len = 1;
            run_is_space = space;
        }
    }
    out.push(&s[start..]);
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A byte-level vocabulary plus three merges, enough to exercise BPE and the specials.
    fn tiny() -> Result<Llama3Tokenizer> {
        let engine = base64::engine::general_purpose::STANDARD;
        let mut file = tempfile::NamedTempFile::new()?;
        let mut rank = 0u32;
        for b in 0..=255u8 {
            writeln!(file, "{} {rank}", engine.encode([b]))?;
            rank += 1;
        }
        for tok in ["he", "ll", "hell"] {
            writeln!(file, "{} {rank}", engine.encode(tok))?;
            rank += 1;
        }
        file.flush()?;
        Llama3Tokenizer::from_file(file.path())
    }

    #[test]
    fn merges_and_special_tokens() -> Result<()> {
        let t = tiny()?;
        let eot = t.special_id("<|eot_id|>").unwrap_or_default();
        assert_eq!(eot, 259 + 9);
        assert_eq!(t.special_id("<|reserved_special_token_2|>"), Some(259 + 12));
        assert_eq!(t.special_id("<|reserved_special_token_245|>"), Some(259 + 255));
        assert_eq!(t.encode("hello<|eot_id|>", true), [258, u32::from(b'o'), eot]);
        let plain = t.encode("hello<|eot_id|>", false);
        assert_eq!(plain.len(), 2 + "<|eot_id|>".len());
        assert_eq!(t.decode(&plain), "hello<|eot_id|>");
        assert_eq!(t.decode(&[258, eot, 9999]), "hell<|eot_id|>");
        Ok(())
    }

    #[test]
    fn bad_files_name_the_line() {
        let mut file = tempfile::NamedTempFile::new().unwrap_or_else(|e| unreachable!("{e}"));
        let _ = writeln!(file, "aGk= 0\nnot-base64! 1");
        let err = Llama3Tokenizer::from_file(file.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn long_runs_are_cut_like_the_reference() {
        let s = format!("{}{}", "a".repeat(MAX_RUN_CHARS + 5), " ".repeat(3));
        let parts = chunks(&s);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), MAX_RUN_CHARS);
        assert_eq!(parts.concat(), s);
        assert_eq!(chunks(""), [""]);
    }
}
