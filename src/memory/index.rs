//! One bank's documents in memory, with the search each bank type needs: nearest vectors
//! (cosine similarity), BM25 over words, or lookup by document id.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::types::common::JsonObject;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredChunk {
    pub content: String,
    pub token_count: usize,
}

/// A document as kept in the store: its chunks and, for vector banks, one vector per chunk
/// (little-endian f32, base64, all chunks back to back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDocument {
    pub document_id: String,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub metadata: JsonObject,
    pub chunks: Vec<StoredChunk>,
    #[serde(default, with = "vectors_b64")]
    pub vectors: Vec<f32>,
}

mod vectors_b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom("vector bytes are not a whole number of f32"));
        }
        Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

/// A hit: document, chunk number, score (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub document_id: String,
    pub chunk: usize,
    pub score: f64,
}

/// Orders hits so a `BinaryHeap` keeps the worst on top.
struct Worst(f32, usize, usize);
impl PartialEq for Worst {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Worst {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed on score: the lowest score is the greatest; ties keep insertion order.
        o.0.total_cmp(&self.0).then(self.1.cmp(&o.1)).then(self.2.cmp(&o.2))
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Words for BM25: lowercase runs of letters and digits.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// One chunk's word counts and its length in words.
type ChunkTerms = (HashMap<String, u32>, u32);

/// Okapi BM25 term statistics over the chunks of a bank (k1 = 1.2, b = 0.75, and the
/// non-negative idf `ln(1 + (N - df + 0.5) / (df + 0.5))`).
#[derive(Debug, Default)]
struct Bm25 {
    /// Per document, per chunk: word counts and length in words.
    terms: HashMap<String, Vec<ChunkTerms>>,
    doc_freq: HashMap<String, u32>,
    chunks: u64,
    total_len: u64,
}

const K1: f64 = 1.2;
const B: f64 = 0.75;

impl Bm25 {
    fn add(&mut self, doc: &StoredDocument) {
        let mut per_chunk = Vec::with_capacity(doc.chunks.len());
        for c in &doc.chunks {
            let mut counts: HashMap<String, u32> = HashMap::new();
            let mut len = 0u32;
            for w in words(&c.content) {
                *counts.entry(w).or_default() += 1;
                len += 1;
            }
            for w in counts.keys() {
                *self.doc_freq.entry(w.clone()).or_default() += 1;
            }
            self.chunks += 1;
            self.total_len += u64::from(len);
            per_chunk.push((counts, len));
        }
        self.terms.insert(doc.document_id.clone(), per_chunk);
    }

    fn remove(&mut self, document_id: &str) {
        let Some(per_chunk) = self.terms.remove(document_id) else { return };
        for (counts, len) in per_chunk {
            for w in counts.keys() {
                if let Some(n) = self.doc_freq.get_mut(w) {
                    *n -= 1;
                    if *n == 0 {
                        self.doc_freq.remove(w);
                    }
                }
            }
            self.chunks -= 1;
            self.total_len -= u64::from(len);
        }
    }

    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    fn search(&self, query: &str, k: usize) -> Vec<Hit> {
        let mut q: Vec<String> = words(query).collect();
        q.sort();
        q.dedup();
        if q.is_empty() || self.chunks == 0 {
            return Vec::new();
        }
        let n = self.chunks as f64;
        let avg = (self.total_len as f64 / n).max(1.0);
        let idf: Vec<(String, f64)> = q
            .into_iter()
            .filter_map(|w| {
                let df = f64::from(*self.doc_freq.get(&w)?);
                Some((w, (1.0 + (n - df + 0.5) / (df + 0.5)).ln()))
            })
            .collect();
        let mut hits = Vec::new();
        for (doc_id, per_chunk) in &self.terms {
            for (i, (counts, len)) in per_chunk.iter().enumerate() {
                let mut score = 0.0;
                for (w, idf) in &idf {
                    if let Some(&tf) = counts.get(w) {
                        let tf = f64::from(tf);
                        score += idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * f64::from(*len) / avg));
                    }
                }
                if score > 0.0 {
                    hits.push(Hit { document_id: doc_id.clone(), chunk: i, score });
                }
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.document_id.cmp(&b.document_id)));
        hits.truncate(k);
        hits
    }
}

/// The documents of one bank, in insertion order.
#[derive(Default)]
pub struct BankIndex {
    docs: IndexMap<String, StoredDocument>,
    bm25: Option<Bm25>,
    dim: usize,
    chunk_count: usize,
    /// Bumped by every change; an approximate index serves only the version it was built from.
    version: u64,
    ann: Option<std::sync::Arc<super::ann::Ann>>,
    /// Whether an approximate index is being built for this bank now.
    pub building: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl BankIndex {
    pub fn new(keyword: bool) -> Self {
        Self { bm25: keyword.then(Bm25::default), ..Self::default() }
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn chunk_count(&self) -> usize {
        self.chunk_count
    }

    pub fn contains(&self, document_id: &str) -> bool {
        self.docs.contains_key(document_id)
    }

    pub fn document(&self, document_id: &str) -> Option<&StoredDocument> {
        self.docs.get(document_id)
    }

    /// Adds or replaces a document.
    pub fn put(&mut self, doc: StoredDocument) {
        self.remove(&doc.document_id);
        if !doc.vectors.is_empty() && !doc.chunks.is_empty() {
            self.dim = doc.vectors.len() / doc.chunks.len();
        }
        if let Some(b) = &mut self.bm25 {
            b.add(&doc);
        }
        self.chunk_count += doc.chunks.len();
        self.version += 1;
        self.docs.insert(doc.document_id.clone(), doc);
    }

    pub fn remove(&mut self, document_id: &str) -> Option<StoredDocument> {
        let old = self.docs.shift_remove(document_id)?;
        if let Some(b) = &mut self.bm25 {
            b.remove(document_id);
        }
        self.chunk_count -= old.chunks.len();
        self.version += 1;
        Some(old)
    }

    /// The `k` chunks most similar to the unit vector `query`, by exact comparison with all.
    pub fn nearest_exact(&self, query: &[f32], k: usize) -> Vec<Hit> {
        let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
        if k == 0 || self.dim == 0 || query.len() != self.dim {
            return Vec::new();
        }
        for (d, doc) in self.docs.values().enumerate() {
            for (c, v) in doc.vectors.chunks_exact(self.dim).enumerate() {
                let s = dot(query, v);
                if heap.len() < k {
                    heap.push(Worst(s, d, c));
                } else if heap.peek().is_some_and(|w| s > w.0) {
                    heap.pop();
                    heap.push(Worst(s, d, c));
                }
            }
        }
        let mut best = heap.into_sorted_vec();
        best.truncate(k);
        best.into_iter()
            .filter_map(|Worst(s, d, c)| {
                let (id, _) = self.docs.get_index(d)?;
                Some(Hit { document_id: id.clone(), chunk: c, score: f64::from(s) })
            })
            .collect()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Every chunk vector with its (document, chunk), for building an approximate index.
    pub fn snapshot(&self) -> super::ann::Snapshot {
        let mut vectors = Vec::with_capacity(self.chunk_count);
        let mut labels = Vec::with_capacity(self.chunk_count);
        if self.dim > 0 {
            for doc in self.docs.values() {
                for (c, v) in doc.vectors.chunks_exact(self.dim).enumerate() {
                    vectors.push(v.to_vec());
                    labels.push((doc.document_id.clone(), c));
                }
            }
        }
        super::ann::Snapshot { version: self.version, vectors, labels }
    }

    /// Keeps an approximate index if the bank has not changed since its snapshot.
    pub fn set_ann(&mut self, ann: super::ann::Ann) -> bool {
        if ann.version != self.version {
            return false;
        }
        self.ann = Some(std::sync::Arc::new(ann));
        true
    }

    /// Nearest chunks: exact up to `exact_limit` chunks (and for more results than the graph
    /// search keeps), else from the approximate index when it is current. The flag says a
    /// current approximate index is wanted and missing (the caller builds one).
    pub fn nearest(&self, query: &[f32], k: usize, exact_limit: usize) -> (Vec<Hit>, bool) {
        if self.chunk_count <= exact_limit || k > super::ann::EF_SEARCH {
            return (self.nearest_exact(query, k), false);
        }
        match &self.ann {
            Some(ann) if ann.version == self.version => (ann.search(query, k), false),
            _ => (self.nearest_exact(query, k), true),
        }
    }

    pub fn keyword(&self, query: &str, k: usize) -> Vec<Hit> {
        self.bm25.as_ref().map(|b| b.search(query, k)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, chunks: &[&str], vectors: &[[f32; 2]]) -> StoredDocument {
        StoredDocument {
            document_id: id.into(),
            mime_type: None,
            metadata: JsonObject::new(),
            chunks: chunks.iter().map(|c| StoredChunk { content: (*c).into(), token_count: 1 }).collect(),
            vectors: vectors.iter().flatten().copied().collect(),
        }
    }

    #[test]
    fn exact_search_ranks_by_cosine_and_replaces_documents() {
        let mut ix = BankIndex::new(false);
        ix.put(doc("a", &["east", "north"], &[[1.0, 0.0], [0.0, 1.0]]));
        ix.put(doc("b", &["north-east"], &[[0.6, 0.8]]));
        let hits = ix.nearest_exact(&[0.0, 1.0], 2);
        assert_eq!((hits[0].document_id.as_str(), hits[0].chunk), ("a", 1));
        assert_eq!(hits[1].document_id, "b");
        assert!((hits[0].score - 1.0).abs() < 1e-6);
        assert_eq!(ix.nearest_exact(&[0.0, 1.0], 10).len(), 3);
        ix.put(doc("a", &["west"], &[[-1.0, 0.0]]));
        assert_eq!(ix.chunk_count(), 2);
        assert_eq!(ix.nearest_exact(&[-1.0, 0.0], 1)[0].document_id, "a");
        ix.remove("a");
        assert_eq!(ix.chunk_count(), 1);
        assert!(ix.nearest_exact(&[0.0, 0.0], 0).is_empty());
    }

    #[test]
    fn bm25_prefers_rarer_and_denser_matches() {
        let mut ix = BankIndex::new(true);
        ix.put(doc("cats", &["Cats sleep most of the day. Cats purr."], &[]));
        ix.put(doc("dogs", &["Dogs bark and the day is long."], &[]));
        ix.put(doc("fish", &["Fish swim."], &[]));
        let hits = ix.keyword("cats day", 5);
        assert_eq!(hits[0].document_id, "cats");
        assert_eq!(hits.len(), 2);
        assert!(hits[0].score > hits[1].score && hits[1].score > 0.0);
        assert!(ix.keyword("zebra", 5).is_empty());
        ix.remove("cats");
        assert_eq!(ix.keyword("cats", 5).len(), 0);
        assert_eq!(ix.keyword("DAY", 5)[0].document_id, "dogs");
    }

    #[test]
    fn vectors_round_trip_through_json() {
        let d = doc("a", &["x", "y"], &[[0.25, -1.5], [3.0, 0.0]]);
        let back: StoredDocument = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
