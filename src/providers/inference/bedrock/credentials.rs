//! Where the provider finds its AWS credentials, region and endpoint, in the order boto3 looks:
//! the provider config, then the environment, then the shared credentials and config files.
//! Credential sources that need a call to AWS (SSO, assumed roles, instance metadata, external
//! processes) are not followed; the error says how to hand such credentials over instead.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// Reads one environment variable; blank values count as unset. Tests pass their own.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A key pair, with the session token that temporary credentials come with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Secrets stay out of logs and error messages.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What the provider config says; `None` (or blank) means "look elsewhere".
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Everything a request needs to reach and sign for Bedrock.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub credentials: Credentials,
    pub region: String,
    /// The endpoint's base URL, without a trailing slash.
    pub endpoint: String,
}

/// Finds credentials, region and endpoint. The error names every place that was looked at, so
/// the user can pick one.
pub(crate) fn resolve(settings: &Settings, env: Env<'_>) -> Result<Resolved, String> {
    let files = SharedFiles::load(env)?;
    let profile = Profile::pick(settings, env);
    let credentials = credentials(settings, env, &files, &profile);
    let region = region(settings, env, &files, &profile);
    match (credentials, region) {
        (Ok(credentials), Ok(region)) => {
            let endpoint = endpoint(settings, env, &region);
            Ok(Resolved { credentials, region, endpoint })
        }
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
    }
}

fn given(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The profile to read from the shared files, and whether the user chose it.
struct Profile {
    name: String,
    /// `profile_name` from the config: it also turns off the credential environment variables,
    /// as an explicit profile does in boto3.
    from_config: bool,
}

impl Profile {
    fn pick(settings: &Settings, env: Env<'_>) -> Self {
        if let Some(name) = given(settings.profile.as_ref()) {
            return Self { name, from_config: true };
        }
        let name = env("AWS_PROFILE").or_else(|| env("AWS_DEFAULT_PROFILE")).unwrap_or_else(|| "default".into());
        Self { name: name.trim().to_owned(), from_config: false }
    }
}

fn credentials(
    settings: &Settings,
    env: Env<'_>,
    files: &SharedFiles,
    profile: &Profile,
) -> Result<Credentials, String> {
    let key = given(settings.access_key_id.as_ref());
    let secret = given(settings.secret_access_key.as_ref());
    match (key, secret) {
        (Some(access_key_id), Some(secret_access_key)) => {
            let session_token = given(settings.session_token.as_ref());
            return Ok(Credentials { access_key_id, secret_access_key, session_token });
        }
        (Some(_), None) => return Err("`aws_access_key_id` is set but `aws_secret_access_key` is not".into()),
        (None, Some(_)) => return Err("`aws_secret_access_key` is set but `aws_access_key_id` is not".into()),
        (None, None) => {}
    }
    if !profile.from_config {
        match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => {
                let session_token = env("AWS_SESSION_TOKEN").or_else(|| env("AWS_SECURITY_TOKEN"));
                return Ok(Credentials { access_key_id, secret_access_key, session_token });
            }
            (Some(_), None) => return Err("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into()),
            (None, Some(_)) => return Err("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into()),
            (None, None) => {}
        }
    }
    let sections = [
        (files.credentials.get(&profile.name), &files.credentials_path),
        (files.config_profile(&profile.name), &files.config_path),
    ];
    for (section, path) in sections {
        let Some(section) = section else { continue };
        match (section.get("aws_access_key_id"), section.get("aws_secret_access_key")) {
            (Some(access_key_id), Some(secret_access_key)) => {
                let session_token =
                    section.get("aws_session_token").or_else(|| section.get("aws_security_token")).cloned();
                return Ok(Credentials {
                    access_key_id: access_key_id.clone(),
                    secret_access_key: secret_access_key.clone(),
                    session_token,
                });
            }
            (None, None) => {}
            _ => {
                return Err(format!(
                    "profile `{}` in {} has only one of `aws_access_key_id` and `aws_secret_access_key`",
                    profile.name,
                    path.display()
                ));
            }
        }
    }
    let indirect = ["role_arn", "credential_process", "sso_session", "sso_start_url", "web_identity_token_file"];
    if let Some(how) = files.config_profile(&profile.name).and_then(|s| indirect.iter().find(|k| s.contains_key(**k))) {
        return Err(format!(
            "profile `{}` in {} gets its credentials through `{how}`, which this provider does not follow; \
             export temporary credentials (`aws configure export-credentials --profile {} --format env`) or set \
             `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token` in the provider config",
            profile.name,
            files.config_path.display(),
            profile.name
        ));
    }
    let chosen = if profile.from_config { " (chosen by `profile_name`)" } else { "" };
    Err(format!(
        "no AWS credentials found: set `aws_access_key_id` and `aws_secret_access_key` (and `aws_session_token` \
         for temporary credentials) in the provider config, or the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
         environment variables, or give profile `{}`{chosen} keys in {} (AWS_SHARED_CREDENTIALS_FILE) or {} \
         (AWS_CONFIG_FILE)",
        profile.name,
        files.credentials_path.display(),
        files.config_path.display()
    ))
}

fn region(settings: &Settings, env: Env<'_>, files: &SharedFiles, profile: &Profile) -> Result<String, String> {
    if let Some(r) = given(settings.region.as_ref()) {
        return Ok(r);
    }
    if let Some(r) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        return Ok(r.trim().to_owned());
    }
    if let Some(r) = files.config_profile(&profile.name).and_then(|s| s.get("region")).filter(|r| !r.is_empty()) {
        return Ok(r.clone());
    }
    Err(format!(
        "no AWS region found: set `region_name` in the provider config, or the AWS_REGION (or AWS_DEFAULT_REGION) \
         environment variable, or `region` in profile `{}` of {} (AWS_CONFIG_FILE)",
        profile.name,
        files.config_path.display()
    ))
}

/// The configured endpoint, else the ones boto3 reads from the environment, else the region's.
fn endpoint(settings: &Settings, env: Env<'_>, region: &str) -> String {
    let ignore_env = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let from_env = || env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME").or_else(|| env("AWS_ENDPOINT_URL"));
    given(settings.endpoint_url.as_ref())
        .or_else(|| if ignore_env { None } else { from_env() })
        .map_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"), |u| u.trim().to_owned())
        .trim_end_matches('/')
        .to_owned()
}

type Section = HashMap<String, String>;

/// The shared credentials and config files, read once; a missing file is an empty one.
struct SharedFiles {
    credentials_path: PathBuf,
    config_path: PathBuf,
    credentials: HashMap<String, Section>,
    config: HashMap<String, Section>,
}

impl SharedFiles {
    fn load(env: Env<'_>) -> Result<Self, String> {
        let home = env("HOME").or_else(|| env("USERPROFILE")).map(PathBuf::from);
        let path = |var: &str, default: &str| -> PathBuf {
            match env(var) {
                Some(p) => expand_home(p.trim(), home.as_ref()),
                None => home.clone().unwrap_or_default().join(".aws").join(default),
            }
        };
        let credentials_path = path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config_path = path("AWS_CONFIG_FILE", "config");
        Ok(Self {
            credentials: read_ini(&credentials_path)?,
            config: read_ini(&config_path)?,
            credentials_path,
            config_path,
        })
    }

    /// A profile of the config file, where every profile but `default` is `[profile NAME]`.
    fn config_profile(&self, name: &str) -> Option<&Section> {
        let prefixed = self.config.get(&format!("profile {name}"));
        if name == "default" { self.config.get("default").or(prefixed) } else { prefixed }
    }
}

fn expand_home(p: &str, home: Option<&PathBuf>) -> PathBuf {
    match (p.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

fn read_ini(path: &PathBuf) -> Result<HashMap<String, Section>, String> {
    match fs_err::read_to_string(path) {
        Ok(text) => Ok(parse_ini(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(format!("cannot read AWS settings: {e}")),
    }
}

/// The INI dialect of the AWS files: `[section]` headers, `key = value` lines, `#` and `;`
/// comment lines. Indented lines under a key with no value are a nested block (per-service
/// settings) and are skipped.
fn parse_ini(text: &str) -> HashMap<String, Section> {
    let mut out: HashMap<String, Section> = HashMap::new();
    let mut current: Option<String> = None;
    let mut in_nested = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) && in_nested {
            continue;
        }
        in_nested = false;
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let (Some(section), Some((key, value))) = (&current, line.split_once('=')) else { continue };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_owned());
        in_nested = value.is_empty();
        out.entry(section.clone()).or_default().insert(key, value);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    /// An environment made of the given pairs, with HOME in a temporary folder.
    struct FakeEnv {
        vars: HashMap<String, String>,
        _home: tempfile::TempDir,
    }

    impl FakeEnv {
        fn new(pairs: &[(&str, &str)]) -> Self {
            let home = tempfile::tempdir().unwrap();
            let mut vars: HashMap<String, String> =
                pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            vars.insert("HOME".into(), home.path().display().to_string());
            Self { vars, _home: home }
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let dir = PathBuf::from(&self.vars["HOME"]).join(".aws");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }

        fn resolve(&self, settings: &Settings) -> Result<Resolved, String> {
            let get = |k: &str| self.vars.get(k).cloned().filter(|v| !v.is_empty());
            resolve(settings, &get)
        }
    }

    fn keys(r: &Resolved) -> (&str, &str, Option<&str>) {
        let c = &r.credentials;
        (c.access_key_id.as_str(), c.secret_access_key.as_str(), c.session_token.as_deref())
    }

    const CREDENTIALS_FILE: &str = "# comment\n[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = \
                                    filesecret\n\n[work]\naws_access_key_id=AKIDWORK\naws_secret_access_key=worksecret\n\
                                    aws_session_token = worktoken\n";
    const CONFIG_FILE: &str = "[default]\nregion = eu-west-3\ns3 =\n  max_concurrent_requests = 5\n\
                               [profile work]\nregion = ap-south-1\n[profile sso]\nsso_session = corp\n";

    #[test]
    fn config_fields_win_over_everything() {
        let env = FakeEnv::new(&[("AWS_ACCESS_KEY_ID", "AKIDENV"), ("AWS_SECRET_ACCESS_KEY", "envsecret")]);
        env.write("credentials", CREDENTIALS_FILE);
        let settings = Settings {
            access_key_id: Some("AKIDCFG".into()),
            secret_access_key: Some("cfgsecret".into()),
            session_token: Some("cfgtoken".into()),
            region: Some("us-west-2".into()),
            ..Settings::default()
        };
        let r = env.resolve(&settings).unwrap();
        assert_eq!(keys(&r), ("AKIDCFG", "cfgsecret", Some("cfgtoken")));
        assert_eq!(r.region, "us-west-2");
        assert_eq!(r.endpoint, "https://bedrock-runtime.us-west-2.amazonaws.com");
        let half = Settings { access_key_id: Some("AKIDCFG".into()), ..Settings::default() };
        assert!(env.resolve(&half).unwrap_err().contains("`aws_access_key_id` is set but"), "names the missing field");
    }

    #[test]
    fn environment_then_shared_files() {
        let env = FakeEnv::new(&[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "envtoken"),
            ("AWS_DEFAULT_REGION", "ca-central-1"),
        ]);
        env.write("credentials", CREDENTIALS_FILE);
        env.write("config", CONFIG_FILE);
        let r = env.resolve(&Settings::default()).unwrap();
        assert_eq!(keys(&r), ("AKIDENV", "envsecret", Some("envtoken")));
        assert_eq!(r.region, "ca-central-1");
        // An explicit profile turns the credential variables off, as in boto3.
        let r = env.resolve(&Settings { profile: Some("work".into()), ..Settings::default() }).unwrap();
        assert_eq!(keys(&r), ("AKIDWORK", "worksecret", Some("worktoken")));
        assert_eq!(r.region, "ca-central-1", "the region variable still applies");

        let files_only = FakeEnv::new(&[]);
        files_only.write("credentials", CREDENTIALS_FILE);
        files_only.write("config", CONFIG_FILE);
        let r = files_only.resolve(&Settings::default()).unwrap();
        assert_eq!(keys(&r), ("AKIDFILE", "filesecret", None));
        assert_eq!(r.region, "eu-west-3");
    }

    #[test]
    fn aws_profile_and_file_locations_from_the_environment() {
        let env = FakeEnv::new(&[("AWS_PROFILE", "work")]);
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds.ini");
        let config = dir.path().join("conf.ini");
        std::fs::write(&creds, CREDENTIALS_FILE).unwrap();
        std::fs::write(&config, CONFIG_FILE).unwrap();
        let mut env = env;
        env.vars.insert("AWS_SHARED_CREDENTIALS_FILE".into(), creds.display().to_string());
        env.vars.insert("AWS_CONFIG_FILE".into(), config.display().to_string());
        let r = env.resolve(&Settings::default()).unwrap();
        assert_eq!(keys(&r), ("AKIDWORK", "worksecret", Some("worktoken")));
        assert_eq!(r.region, "ap-south-1");
    }

    #[test]
    fn missing_or_unusable_credentials_say_where_to_put_them() {
        let env = FakeEnv::new(&[]);
        let e = env.resolve(&Settings::default()).unwrap_err();
        for needle in ["aws_access_key_id", "AWS_ACCESS_KEY_ID", "region_name", "AWS_REGION", "profile `default`"] {
            assert!(e.contains(needle), "{needle} missing from: {e}");
        }
        env.write("config", CONFIG_FILE);
        let e = env.resolve(&Settings { profile: Some("sso".into()), ..Settings::default() }).unwrap_err();
        assert!(e.contains("sso_session") && e.contains("export-credentials"), "{e}");
        let env = FakeEnv::new(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_REGION", "us-east-1")]);
        assert!(env.resolve(&Settings::default()).unwrap_err().contains("AWS_ACCESS_KEY_ID is set but"));
    }

    #[test]
    fn endpoint_overrides() {
        let settings = Settings {
            access_key_id: Some("a".into()),
            secret_access_key: Some("b".into()),
            region: Some("us-east-1".into()),
            ..Settings::default()
        };
        let env = FakeEnv::new(&[("AWS_ENDPOINT_URL", "http://general:1/")]);
        assert_eq!(env.resolve(&settings).unwrap().endpoint, "http://general:1");
        let env = FakeEnv::new(&[
            ("AWS_ENDPOINT_URL", "http://general:1"),
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://bedrock:2"),
        ]);
        assert_eq!(env.resolve(&settings).unwrap().endpoint, "http://bedrock:2");
        let own = Settings { endpoint_url: Some("http://own:3".into()), ..settings.clone() };
        assert_eq!(env.resolve(&own).unwrap().endpoint, "http://own:3");
        let env =
            FakeEnv::new(&[("AWS_ENDPOINT_URL", "http://general:1"), ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")]);
        assert_eq!(env.resolve(&settings).unwrap().endpoint, "https://bedrock-runtime.us-east-1.amazonaws.com");
    }

    #[test]
    fn ini_sections_and_nested_blocks() {
        let ini = parse_ini(CONFIG_FILE);
        assert_eq!(ini["default"].get("region").map(String::as_str), Some("eu-west-3"));
        assert!(!ini["default"].contains_key("max_concurrent_requests"));
        assert_eq!(ini["profile work"]["region"], "ap-south-1");
        assert!(
            format!(
                "{:?}",
                Credentials { access_key_id: "AKID".into(), secret_access_key: "s3cr3t".into(), session_token: None }
            )
            .contains("<redacted>")
        );
    }
}
