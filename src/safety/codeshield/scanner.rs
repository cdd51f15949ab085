//! The insecure-code scanner: rules read from `rules.yaml` (part of the binary), code blocks
//! found in message text, and the findings.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The languages the rules know, each with the fence tags that name it.
pub const LANGUAGES: &[(&str, &[&str])] = &[
    ("python", &["python", "py", "python3", "py3", "ipython", "pycon"]),
    ("javascript", &["javascript", "js", "node", "nodejs", "jsx", "typescript", "ts", "tsx", "mjs", "cjs"]),
    ("java", &["java"]),
    ("c", &["c", "cpp", "c++", "cc", "cxx", "h", "hpp", "objc", "objective-c"]),
    ("php", &["php"]),
    ("go", &["go", "golang"]),
    ("shell", &["shell", "sh", "bash", "zsh", "console", "shell-session", "dockerfile"]),
];

/// The rules' language of a fence tag, if it is one the rules know.
pub fn language_of(tag: &str) -> Option<&'static str> {
    let tag = tag.trim().to_ascii_lowercase();
    LANGUAGES.iter().find(|(_, tags)| tags.contains(&tag.as_str())).map(|(name, _)| *name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Deserialize)]
struct RuleSource {
    id: String,
    languages: Vec<String>,
    cwe: String,
    severity: Severity,
    description: String,
    pattern: String,
    #[serde(default)]
    unless: Option<String>,
    insecure: String,
    secure: String,
}

#[derive(Debug)]
pub struct Rule {
    pub id: String,
    /// Empty means every language.
    pub languages: Vec<String>,
    pub cwe: String,
    pub severity: Severity,
    pub description: String,
    pattern: Regex,
    unless: Option<Regex>,
    pub insecure_example: String,
    pub secure_example: String,
}

impl Rule {
    fn applies_to(&self, language: Option<&str>) -> bool {
        match language {
            None => true,
            Some(l) => self.languages.is_empty() || self.languages.iter().any(|x| x == l),
        }
    }

    fn matches(&self, line: &str) -> bool {
        self.pattern.is_match(line) && !self.unless.as_ref().is_some_and(|u| u.is_match(line))
    }
}

/// One weakness found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub pattern_id: String,
    pub cwe_id: String,
    pub severity: Severity,
    pub description: String,
    /// The language of the block it was found in, when the block named one.
    pub language: Option<String>,
    /// 1-based line within the message.
    pub line: usize,
}

const RULES_YAML: &str = include_str!("rules.yaml");

fn load(text: &str) -> std::result::Result<Vec<Rule>, String> {
    let sources: Vec<RuleSource> = serde_norway::from_str(text).map_err(|e| format!("rules.yaml: {e}"))?;
    let mut rules: Vec<Rule> = Vec::with_capacity(sources.len());
    for s in sources {
        if rules.iter().any(|r| r.id == s.id) {
            return Err(format!("rules.yaml: rule id `{}` appears twice", s.id));
        }
        let compile = |p: &str| Regex::new(p).map_err(|e| format!("rules.yaml: rule `{}`: {e}", s.id));
        let languages: Vec<String> = s.languages.into_iter().filter(|l| l != "any").collect();
        if let Some(unknown) = languages.iter().find(|l| !LANGUAGES.iter().any(|(n, _)| n == l)) {
            return Err(format!("rules.yaml: rule `{}` names unknown language `{unknown}`", s.id));
        }
        rules.push(Rule {
            pattern: compile(&s.pattern)?,
            unless: s.unless.as_deref().map(compile).transpose()?,
            id: s.id,
            languages,
            cwe: s.cwe,
            severity: s.severity,
            description: s.description,
            insecure_example: s.insecure,
            secure_example: s.secure,
        });
    }
    Ok(rules)
}

static RULES: LazyLock<std::result::Result<Vec<Rule>, String>> = LazyLock::new(|| load(RULES_YAML));

/// The built-in rule set.
pub fn rules() -> Result<&'static [Rule]> {
    RULES.as_deref().map_err(|e| Error::internal(e.clone()))
}

/// A stretch of code: its language (when its fence named a known one) and first line.
#[derive(Debug, PartialEq, Eq)]
struct Block<'a> {
    language: Option<&'static str>,
    first_line: usize,
    lines: Vec<&'a str>,
}

/// Fenced blocks (three or more backticks or tildes) of `text`; a text without any fence is one untagged block. A
/// fence left open runs to the end of the text.
fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut open: Option<(String, Block<'_>)> = None;
    let mut any_fence = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence: String = trimmed.chars().take_while(|c| *c == '`' || *c == '~').collect();
        let is_fence = fence.len() >= 3 && fence.chars().all(|c| c == fence.chars().next().unwrap_or('`'));
        match open.take() {
            Some((marker, block))
                if is_fence && fence.starts_with(&marker) && trimmed[fence.len()..].trim().is_empty() =>
            {
                out.push(block);
            }
            Some((marker, mut block)) => {
                block.lines.push(line);
                open = Some((marker, block));
            }
            None if is_fence => {
                any_fence = true;
                let info = trimmed[fence.len()..].split_whitespace().next().unwrap_or("");
                let language = language_of(info.trim_start_matches('{').trim_start_matches('.'));
                open = Some((fence, Block { language, first_line: i + 2, lines: Vec::new() }));
            }
            None => {}
        }
    }
    if let Some((_, block)) = open {
        out.push(block);
    }
    if !any_fence {
        out.push(Block { language: None, first_line: 1, lines: text.lines().collect() });
    }
    out
}

/// Every weakness in `text`, in order of appearance; each rule is reported once per line.
pub fn scan(text: &str) -> Result<Vec<Finding>> {
    let rules = rules()?;
    let mut found = Vec::new();
    for block in blocks(text) {
        let applicable: Vec<&Rule> = rules.iter().filter(|r| r.applies_to(block.language)).collect();
        for (offset, line) in block.lines.iter().enumerate() {
            for rule in applicable.iter().filter(|r| r.matches(line)) {
                found.push(Finding {
                    pattern_id: rule.id.clone(),
                    cwe_id: rule.cwe.clone(),
                    severity: rule.severity,
                    description: rule.description.clone(),
                    language: block.language.map(str::to_owned),
                    line: block.first_line + offset,
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_file_loads_and_covers_every_language() {
        let rules = rules().unwrap();
        assert!(rules.len() >= 30, "{}", rules.len());
        for (lang, _) in LANGUAGES {
            assert!(rules.iter().any(|r| r.languages.iter().any(|l| l == lang)), "no rule for {lang}");
        }
    }

    /// Each rule flags its insecure example and leaves its secure example alone, both when the
    /// example is fenced with the rule's language and when it is untagged.
    #[test]
    fn every_rule_flags_its_insecure_example_and_not_its_secure_one() {
        let mut failures = Vec::new();
        for rule in rules().unwrap() {
            let lang = rule.languages.first().map_or("python", String::as_str);
            let fenced = |code: &str| format!("Here you go:\n```{lang}\n{code}\n```\n");
            for text in [rule.insecure_example.clone(), fenced(&rule.insecure_example)] {
                if !scan(&text).unwrap().iter().any(|f| f.pattern_id == rule.id) {
                    failures.push(format!("{} missed its insecure example: {text:?}", rule.id));
                }
            }
            for text in [rule.secure_example.clone(), fenced(&rule.secure_example)] {
                if scan(&text).unwrap().iter().any(|f| f.pattern_id == rule.id) {
                    failures.push(format!("{} flagged its secure example: {text:?}", rule.id));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn fences_pick_the_language_and_prose_outside_them_is_not_code() {
        let text = "Do not call eval(x) in prose.\n```js\nconst h = crypto.createHash('md5');\n```\n";
        let found = scan(text).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pattern_id, "js-weak-hash");
        assert_eq!(found[0].language.as_deref(), Some("javascript"));
        assert_eq!(found[0].line, 3);
        // A Python rule does not read a block fenced as Go.
        let go = "```go\nresult := eval(x)\n```";
        assert!(scan(go).unwrap().is_empty());
        // An untagged fence is read by every language's rules.
        let untagged = "```\nos.system(cmd)\n```";
        assert!(scan(untagged).unwrap().iter().any(|f| f.pattern_id == "python-shell-injection"));
    }

    #[test]
    fn an_unclosed_fence_runs_to_the_end_and_tildes_fence_too() {
        let found = scan("```python\nimport pickle\nobj = pickle.loads(blob)").unwrap();
        assert_eq!(found.iter().map(|f| f.pattern_id.as_str()).collect::<Vec<_>>(), ["python-unsafe-deserialization"]);
        let found = scan("~~~c\nstrcpy(a, b);\n~~~\n```python\nx = 1\n```").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 2);
    }

    #[test]
    fn clean_code_has_no_findings() {
        let text = "```python\nimport hashlib\n\ndef digest(data: bytes) -> str:\n    return hashlib.sha256(data).hexdigest()\n```";
        assert!(scan(text).unwrap().is_empty());
    }

    #[test]
    fn a_broken_rule_file_is_an_error_naming_the_rule() {
        let bad = "- {id: x, languages: [python], cwe: CWE-1, severity: error, description: d, pattern: '(', insecure: a, secure: b}";
        assert!(load(bad).unwrap_err().contains("rule `x`"));
        let unknown = "- {id: y, languages: [cobol], cwe: CWE-1, severity: error, description: d, pattern: 'a', insecure: a, secure: b}";
        assert!(load(unknown).unwrap_err().contains("cobol"));
    }
}
