//! The control verbs (`reset`, `state`, `requests`, `clock`, `tenant`): thin
//! clients of a running host's `/_wt/` control plane. With `--tenant ID` the
//! verbs act on that tenant's twins (`/_wt/tenants/ID/…`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

/// Where the running host is.
#[derive(Debug, Args)]
pub struct Remote {
    /// The running host's shared listener [default: `listen` of ./wt.toml,
    /// else http://127.0.0.1:4100].
    #[arg(long, global = true, value_name = "URL", env = "WT_URL")]
    url: Option<String>,
    /// The host's admin token, if it was started with one.
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "WT_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// Act on this tenant's twins instead of the default world's.
    #[arg(long, global = true, value_name = "ID", env = "WT_TENANT")]
    tenant: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Make a tenant: its own copies of the host's twins (all, or those
    /// named), with their own state, clock, faults, settings and journal.
    /// Prints its id, then each twin's base URL.
    Create {
        /// Twins to include [default: all].
        twins: Vec<String>,
        /// Removed after this long without a request, e.g. `2h`, `30m`.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Its id [default: made up]; 1-63 of a-z, 0-9 and '-'.
        #[arg(long)]
        name: Option<String>,
        /// No ports of their own for its twins: reach them through the
        /// shared listener's `/ID/TWIN/` prefix.
        #[arg(long)]
        no_ports: bool,
        /// Print the host's JSON answer instead.
        #[arg(long)]
        json: bool,
    },
    /// List the live tenants.
    List {
        /// Print the host's JSON answer instead.
        #[arg(long)]
        json: bool,
    },
    /// Remove a tenant (requests in flight finish first).
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Print a twin's whole state as JSON (or write it to a file).
    Export {
        twin: String,
        /// Write here instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Replace a twin's whole state with a file written by `export`.
    Import { twin: String, file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum ClockCommand {
    /// Print twin time.
    Show,
    /// Move twin time forward, e.g. `24h`, `30m`, `90s`.
    Advance { by: String },
    /// Stop twin time.
    Freeze,
    /// Let twin time run again.
    Unfreeze,
    /// Make a twin's clock follow the global one again (needs --twin).
    Reset,
}

/// Filters for `wt-host requests`.
#[derive(Debug, Args)]
pub struct RequestsArgs {
    twin: String,
    /// Only this method.
    #[arg(long)]
    method: Option<String>,
    /// Only paths starting with this.
    #[arg(long)]
    path: Option<String>,
    /// At most this many, newest last.
    #[arg(long)]
    limit: Option<usize>,
    /// Empty the journal instead of printing it.
    #[arg(long)]
    clear: bool,
}

impl Remote {
    /// The admin token given, if any.
    pub(crate) fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// `--url`/`WT_URL`, else the host `wt-host up` started here
    /// (`.wt/host.url`), else the project file's `listen`, else the default.
    pub(crate) fn base_url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.url {
            return Ok(url.trim_end_matches('/').to_owned());
        }
        if let Some(url) = crate::lifecycle::Files::here().url() {
            return Ok(url);
        }
        if let Some(path) = wt_host::project::Project::find() {
            let project = wt_host::project::Project::load(&path)
                .map_err(|e| crate::errors::BadInput(e.to_string()))?;
            if let Some(listen) = project.listen {
                return Ok(format!("http://{listen}"));
            }
        }
        Ok("http://127.0.0.1:4100".to_owned())
    }

    /// `GET`s a control path and returns its JSON whatever the status (the
    /// health report is 503 when a twin is down, and still the answer).
    pub(crate) async fn send_any(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/_wt/{path}", self.base_url()?);
        let mut request = reqwest::Client::new().request(method, &url);
        if let Some(token) = &self.admin_token {
            request = request.bearer_auth(token);
        }
        let text = request.send().await?.text().await?;
        serde_json::from_str(&text).with_context(|| format!("{url} did not answer JSON: {text}"))
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let base = self.base_url()?;
        let path = match &self.tenant {
            Some(id) if !path.starts_with("tenants") => format!("tenants/{id}/{path}"),
            _ => path.to_owned(),
        };
        let url = format!("{}/_wt/{path}", base.trim_end_matches('/'));
        let mut request = reqwest::Client::new().request(method, &url);
        if let Some(token) = &self.admin_token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("no wt-host answering at {base} (--url, WT_URL)"))?;
        let status = response.status();
        let text = response.text().await.context("reading the host's answer")?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{url} did not answer JSON: {text}"))?;
        if !status.is_success() {
            let message = value["error"]["message"].as_str().unwrap_or(&text);
            bail!("{url}: {status}: {message}");
        }
        Ok(value)
    }

    pub async fn tenant(&self, command: TenantCommand) -> anyhow::Result<()> {
        match command {
            TenantCommand::Create {
                twins,
                ttl,
                name,
                no_ports,
                json,
            } => {
                wt_host::units::parse_duration(&ttl)
                    .map_err(|e| crate::errors::BadInput(format!("--ttl {ttl:?}: {e}")))?;
                let mut body = serde_json::json!({ "twins": twins, "ttl": ttl, "name": name });
                if no_ports {
                    body["ports"] = Value::Bool(false);
                }
                let answer = self
                    .send(reqwest::Method::POST, "tenants", Some(body))
                    .await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&answer)?);
                    return Ok(());
                }
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", answer["id"].as_str().unwrap_or_default())?;
                for (twin, urls) in answer["twins"].as_object().into_iter().flatten() {
                    let base = urls["base_url"].as_str().unwrap_or("-");
                    writeln!(out, "{twin} {base}")?;
                }
            }
            TenantCommand::List { json } => {
                let answer = self.send(reqwest::Method::GET, "tenants", None).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&answer)?);
                    return Ok(());
                }
                let mut out = std::io::stdout().lock();
                for tenant in answer["tenants"].as_array().into_iter().flatten() {
                    let twins: Vec<&str> = tenant["twins"]
                        .as_object()
                        .into_iter()
                        .flat_map(|t| t.keys().map(String::as_str))
                        .collect();
                    writeln!(
                        out,
                        "{} {} (expires in {} s)",
                        tenant["id"].as_str().unwrap_or_default(),
                        twins.join(","),
                        tenant["expires_at_millis"]
                            .as_u64()
                            .map_or(0, |at| at.saturating_sub(now_millis()) / 1000)
                    )?;
                }
            }
            TenantCommand::Delete { id } => {
                self.send(reqwest::Method::DELETE, &format!("tenants/{id}"), None)
                    .await?;
                println!("deleted {id}");
            }
        }
        Ok(())
    }

    pub async fn reset(&self, twin: Option<String>) -> anyhow::Result<()> {
        let path = twin.map_or_else(|| "reset".to_owned(), |t| format!("twins/{t}/reset"));
        let answer = self.send(reqwest::Method::POST, &path, None).await?;
        println!("reset {}", list(&answer["reset"]));
        Ok(())
    }

    pub async fn state(&self, command: StateCommand) -> anyhow::Result<()> {
        match command {
            StateCommand::Export { twin, output } => {
                let answer = self
                    .send(reqwest::Method::GET, &format!("twins/{twin}/state"), None)
                    .await?;
                let text = serde_json::to_string_pretty(&answer)?;
                match output {
                    Some(path) => std::fs::write(&path, text + "\n")
                        .with_context(|| format!("writing {}", path.display()))?,
                    None => println!("{text}"),
                }
            }
            StateCommand::Import { twin, file } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let document: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", file.display()))?;
                let answer = self
                    .send(
                        reqwest::Method::PUT,
                        &format!("twins/{twin}/state"),
                        Some(document),
                    )
                    .await?;
                println!("imported {} entries into {twin}", answer["imported"]);
            }
        }
        Ok(())
    }

    pub async fn requests(&self, args: RequestsArgs) -> anyhow::Result<()> {
        let path = format!("twins/{}/requests", args.twin);
        if args.clear {
            self.send(reqwest::Method::DELETE, &path, None).await?;
            println!("cleared the journal of {}", args.twin);
            return Ok(());
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(method) = &args.method {
            query.append_pair("method", method);
        }
        if let Some(prefix) = &args.path {
            query.append_pair("path", prefix);
        }
        if let Some(limit) = args.limit {
            query.append_pair("limit", &limit.to_string());
        }
        let answer = self
            .send(
                reqwest::Method::GET,
                &format!("{path}?{}", query.finish()),
                None,
            )
            .await?;
        let mut out = std::io::stdout().lock();
        for entry in answer["requests"].as_array().into_iter().flatten() {
            let query = entry["query"].as_str().unwrap_or_default();
            writeln!(
                out,
                "{:>6} {} {}{}{} -> {} ({} µs)",
                entry["seq"],
                entry["method"].as_str().unwrap_or_default(),
                entry["path"].as_str().unwrap_or_default(),
                if query.is_empty() { "" } else { "?" },
                query,
                entry["status"],
                entry["duration_micros"],
            )?;
        }
        Ok(())
    }

    pub async fn clock(&self, command: ClockCommand, twin: Option<&str>) -> anyhow::Result<()> {
        let base = match twin {
            Some(twin) => format!("twins/{twin}/clock"),
            None => "clock".to_owned(),
        };
        let post = |action: &str| format!("{base}/{action}");
        let answer = match command {
            ClockCommand::Show => self.send(reqwest::Method::GET, &base, None).await?,
            ClockCommand::Advance { by } => {
                crate_units_check(&by)?;
                self.send(
                    reqwest::Method::POST,
                    &post("advance"),
                    Some(serde_json::json!({ "by": by })),
                )
                .await?
            }
            ClockCommand::Freeze => {
                self.send(reqwest::Method::POST, &post("freeze"), None)
                    .await?
            }
            ClockCommand::Unfreeze => {
                self.send(reqwest::Method::POST, &post("unfreeze"), None)
                    .await?
            }
            ClockCommand::Reset => {
                if twin.is_none() {
                    return Err(crate::errors::BadInput(
                        "clock reset needs --twin NAME (the global clock has nothing to follow)"
                            .into(),
                    )
                    .into());
                }
                self.send(reqwest::Method::POST, &post("reset"), None)
                    .await?
            }
        };
        println!(
            "twin time {} ms since the epoch{}",
            answer["now_millis"],
            if answer["frozen"] == true {
                " (frozen)"
            } else {
                ""
            }
        );
        Ok(())
    }
}

/// Checks a duration locally so a typo fails with the flag's name.
fn crate_units_check(by: &str) -> anyhow::Result<()> {
    wt_host::units::parse_duration(by).map_err(|e| anyhow::anyhow!("clock advance: {e}"))?;
    Ok(())
}

fn list(value: &Value) -> String {
    value
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
