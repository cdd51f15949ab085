//! The approximate nearest-neighbour index of a large vector bank: an HNSW graph
//! (`instant-distance`) over a snapshot of the bank's chunk vectors, with distance
//! `1 - cosine` on unit vectors. A graph is built off the request path from a snapshot and is
//! used only while the bank is unchanged since that snapshot; until then queries are exact.

use instant_distance::{Builder, HnswMap, Point, Search};

use super::index::{Hit, dot};

/// Candidates kept while searching the graph; also the most results one search gives.
pub const EF_SEARCH: usize = 128;
const EF_CONSTRUCTION: usize = 100;

#[derive(Clone, Debug)]
struct Unit(Vec<f32>);

impl Point for Unit {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(&self.0, &other.0)
    }
}

/// The vectors of one bank at one version, with the (document, chunk) each belongs to.
pub struct Snapshot {
    pub version: u64,
    pub vectors: Vec<Vec<f32>>,
    pub labels: Vec<(String, usize)>,
}

pub struct Ann {
    pub version: u64,
    map: HnswMap<Unit, u32>,
    labels: Vec<(String, usize)>,
}

impl Ann {
    /// Builds the graph; CPU-heavy (seconds for 100k vectors), so run it off async workers.
    pub fn build(snapshot: Snapshot) -> Self {
        let points: Vec<Unit> = snapshot.vectors.into_iter().map(Unit).collect();
        let values: Vec<u32> = (0..points.len()).map(|i| u32::try_from(i).unwrap_or(u32::MAX)).collect();
        let map =
            Builder::default().ef_construction(EF_CONSTRUCTION).ef_search(EF_SEARCH).seed(0x5eed).build(points, values);
        Self { version: snapshot.version, map, labels: snapshot.labels }
    }

    /// Up to `k` (at most `EF_SEARCH`) nearest chunks, best first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<Hit> {
        let mut search = Search::default();
        let q = Unit(query.to_vec());
        self.map
            .search(&q, &mut search)
            .take(k)
            .filter_map(|item| {
                let (doc, chunk) = self.labels.get(usize::try_from(*item.value).ok()?)?;
                Some(Hit { document_id: doc.clone(), chunk: *chunk, score: f64::from(1.0 - item.distance) })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::embedder::normalized;
    use super::super::index::{BankIndex, StoredChunk, StoredDocument};
    use super::*;

    /// Deterministic pseudo-random numbers in [-1, 1) (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            #[allow(clippy::cast_precision_loss)]
            let x = (self.0 >> 40) as f32 / (1u64 << 24) as f32;
            x * 2.0 - 1.0
        }
    }

    /// Vectors clustered around random centres, like sentence embeddings of related texts.
    fn clustered(rng: &mut Rng, n: usize, centres: &[Vec<f32>]) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                let c = &centres[i % centres.len()];
                normalized(c.iter().map(|x| x + 0.35 * rng.next()).collect())
            })
            .collect()
    }

    /// Recall@10 of the graph against exact search, on a bank larger than the exact limit.
    #[test]
    fn recall_at_10_against_exact_search() {
        let (n, dim, queries) = (2000, 32, 100);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let centres: Vec<Vec<f32>> = (0..60).map(|_| normalized((0..dim).map(|_| rng.next()).collect())).collect();
        let vectors = clustered(&mut rng, n, &centres);
        let mut ix = BankIndex::new(false);
        for (i, v) in vectors.iter().enumerate() {
            ix.put(StoredDocument {
                document_id: format!("d{i}"),
                mime_type: None,
                metadata: serde_json::Map::new(),
                chunks: vec![StoredChunk { content: String::new(), token_count: 1 }],
                vectors: v.clone(),
            });
        }
        let ann = Ann::build(ix.snapshot());
        assert_eq!(ann.version, ix.version());
        let mut found = 0usize;
        for q in clustered(&mut rng, queries, &centres) {
            let exact: Vec<String> = ix.nearest_exact(&q, 10).into_iter().map(|h| h.document_id).collect();
            let approx: Vec<String> = ann.search(&q, 10).into_iter().map(|h| h.document_id).collect();
            assert_eq!(approx.len(), 10);
            found += approx.iter().filter(|d| exact.contains(d)).count();
        }
        #[allow(clippy::cast_precision_loss)]
        let recall = found as f64 / (queries * 10) as f64;
        assert!(recall >= 0.95, "recall@10 = {recall}");
    }
}
