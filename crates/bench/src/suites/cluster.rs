//! The cluster suite: two stateless nodes on one PostgreSQL database and one Redis, as an
//! installation that outgrew one machine runs them. It measures ingest spread over both nodes
//! against one node on the same services in the same run (the ratio is what the second node
//! buys, on a machine whose speed drifts), and the time from an event posted at one node to its
//! intervention on a stream read at the other.
//!
//! Each run gets a fresh database of its own (`lp_bench_…`, created by the first node as any
//! node creates a missing database, dropped at the end), so runs never see each other's data.

use std::time::Duration;

use super::{Settings, Target};
use crate::record::{Better, Measurement};

/// The services the cluster suite runs its nodes on.
#[derive(Debug, Clone)]
pub struct Services {
    /// A PostgreSQL server (`postgres://user@host:port`); the suite makes a database on it.
    pub postgres: String,
    /// Redis (`redis://host:port`), the nodes' shared cache; `None`: the nodes share none.
    pub redis: Option<String>,
}

impl Services {
    /// The PostgreSQL URL with `database` in place of the one it names (its query kept).
    fn database_url(&self, database: &str) -> anyhow::Result<String> {
        let mut url = reqwest::Url::parse(&self.postgres)
            .map_err(|e| anyhow::anyhow!("--postgres {}: {e}", self.postgres))?;
        url.set_path(&format!("/{database}"));
        Ok(url.to_string())
    }

    async fn drop_database(&self, database: &str) -> anyhow::Result<()> {
        learnpulse_server::storage::postgres::drop_database(&self.database_url(database)?).await?;
        Ok(())
    }
}

/// A fresh database and the nodes on it.
struct Installation {
    services: Services,
    database: String,
    nodes: Vec<Target>,
    _dir: tempfile::TempDir,
}

impl Installation {
    async fn start(services: &Services, nodes: usize) -> anyhow::Result<Installation> {
        let database = format!("lp_bench_{:016x}", rand::random::<u64>());
        // Every node keeps only the installation's master key in its data directory on
        // PostgreSQL, and every node needs the same one: they share the directory.
        let dir = tempfile::tempdir()?;
        let mut config = learnpulse_server::Config {
            listen: "127.0.0.1:0".parse()?,
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        config.storage.url = Some(services.database_url(&database)?);
        config.cache.url = services.redis.clone();
        let mut installation = Installation {
            services: services.clone(),
            database,
            nodes: Vec::with_capacity(nodes),
            _dir: dir,
        };
        for _ in 0..nodes {
            let key = installation.nodes.first().map(|first| first.key.clone());
            match super::start_local(config.clone(), key, None).await {
                Ok(node) => installation.nodes.push(node),
                Err(e) => {
                    // The first node may have made the database: leave nothing behind.
                    let _ = installation.stop().await;
                    return Err(e);
                }
            }
        }
        Ok(installation)
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }

    /// Stops every node, then drops the database.
    async fn stop(self) -> anyhow::Result<()> {
        for node in self.nodes {
            node.stop().await;
        }
        self.services.drop_database(&self.database).await
    }
}

pub(super) async fn run(
    s: &Settings,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<Measurement>> {
    let services = s.cluster.as_ref().ok_or_else(|| {
        anyhow::anyhow!("the cluster suite needs a PostgreSQL server (--postgres URL)")
    })?;
    let mut two = Measurement::new(
        "cluster",
        "two_node_statements_per_second",
        "statements/s",
        Better::Higher,
    );
    let mut one = Measurement::new(
        "cluster",
        "one_node_statements_per_second",
        "statements/s",
        Better::Higher,
    );
    let mut ratio = Measurement::new("cluster", "two_to_one_node_ratio", "x", Better::Higher);
    let mut p50 = Measurement::new("cluster", "cross_node_stream_p50_ms", "ms", Better::Lower);
    let mut p99 = Measurement::new("cluster", "cross_node_stream_p99_ms", "ms", Better::Lower);
    let seconds = Duration::from_secs(if s.quick { 1 } else { 10 });
    for run in 0..s.runs {
        // One node first, then two, each on a fresh database: the same work, the same hour.
        let mut rates = [0.0; 2];
        for (i, nodes) in [1usize, 2].into_iter().enumerate() {
            progress(&format!(
                "cluster run {}: ingest at {nodes} node(s)",
                run + 1
            ));
            let installation = Installation::start(services, nodes).await?;
            let report = crate::loadgen::run(crate::loadgen::LoadConfig {
                urls: installation.urls(),
                token: installation.nodes[0].key.clone(),
                clients: 4,
                batch: 100,
                duration: seconds,
                native: false,
            })
            .await;
            if nodes == 2 && report.is_ok() {
                progress(&format!(
                    "cluster run {}: event at one node, stream at the other",
                    run + 1
                ));
                let probe = super::probe(
                    &installation.nodes[0],
                    Some(installation.nodes[1].url.clone()),
                    if s.quick { 10 } else { 100 },
                )
                .await;
                installation.stop().await?;
                let probe = probe?;
                anyhow::ensure!(
                    probe.received == probe.rounds,
                    "{} of {} interventions reached the other node's stream",
                    probe.received,
                    probe.rounds
                );
                p50.samples.push(probe.send_to_stream_ms_p50);
                p99.samples.push(probe.send_to_stream_ms_p99);
            } else {
                installation.stop().await?;
            }
            let report = report?;
            anyhow::ensure!(report.failed_requests == 0, "ingest requests failed");
            rates[i] = report.statements as f64 / report.seconds;
        }
        one.samples.push(rates[0]);
        two.samples.push(rates[1]);
        ratio.samples.push(rates[1] / rates[0]);
    }
    Ok(vec![two, one, ratio, p50, p99])
}

#[cfg(test)]
mod tests {
    use super::Services;

    #[test]
    fn the_database_is_put_in_the_postgres_url_with_its_query_kept() {
        for (url, expected) in [
            (
                "postgres://postgres@127.0.0.1:5432",
                "postgres://postgres@127.0.0.1:5432/lp_x",
            ),
            (
                "postgres://postgres@127.0.0.1:5432/",
                "postgres://postgres@127.0.0.1:5432/lp_x",
            ),
            (
                "postgres://u:p@db:5432/learnpulse",
                "postgres://u:p@db:5432/lp_x",
            ),
            (
                "postgres://u@db:5432/app?sslmode=disable",
                "postgres://u@db:5432/lp_x?sslmode=disable",
            ),
        ] {
            let services = Services {
                postgres: url.into(),
                redis: None,
            };
            assert_eq!(services.database_url("lp_x").unwrap(), expected, "{url}");
        }
    }
}
