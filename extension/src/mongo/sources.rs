//! Every configured data source, and which one a request selects.

use std::sync::Arc;

use super::DataSource;
use crate::config::{Config, same_source_name};

/// All configured data sources.
pub struct DataSources {
    sources: Vec<Arc<DataSource>>,
    /// Whether the first is the default one, which a request that names none gets.
    has_default: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown dataSource {name:?}; the configured data sources are: {known}")]
pub struct UnknownDataSource {
    pub name: String,
    pub known: String,
}

impl DataSources {
    /// Creates every data source in the warming state, the default first; [`Self::start`]
    /// connects them.
    pub fn new(config: &Config) -> Self {
        Self {
            sources: config
                .sources()
                .map(|source| Arc::new(DataSource::new(&source.name, config)))
                .collect(),
            has_default: config.default_source.is_some(),
        }
    }

    /// Starts each data source's keeper with its connection string, in configuration order.
    pub fn start(&self, uris: Vec<String>, app_name: &str) {
        for (source, uri) in self.sources.iter().zip(uris) {
            source.start(uri, app_name.to_owned());
        }
    }

    pub fn all(&self) -> &[Arc<DataSource>] {
        &self.sources
    }

    /// The data source a request's `dataSource` selects. With a single data source every
    /// name selects it, because Data API clients always send one; with several, no name
    /// selects the default one, if there is one.
    pub fn select(&self, name: Option<&str>) -> Result<&Arc<DataSource>, UnknownDataSource> {
        if let [only] = self.sources.as_slice() {
            return Ok(only);
        }
        let found = match name {
            None => self.sources.first().filter(|_| self.has_default),
            Some(name) => self
                .sources
                .iter()
                .find(|s| same_source_name(&s.name, name)),
        };
        found.ok_or_else(|| UnknownDataSource {
            name: name.unwrap_or_default().to_owned(),
            known: self
                .sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    pub async fn close_all(&self) {
        futures_util::future::join_all(self.sources.iter().map(|s| s.close())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_pairs(pairs).expect("valid config")
    }

    #[test]
    fn a_single_data_source_answers_to_any_name() {
        let sources = DataSources::new(&config(&[("MONGODB_URI", "mongodb://h")]));
        assert!(sources.select(Some("Cluster0")).is_ok());
        assert!(sources.select(None).is_ok());
    }

    #[test]
    fn with_several_data_sources_an_unknown_name_lists_the_known_ones() {
        let sources = DataSources::new(&config(&[
            ("MONGODB_URI", "mongodb://h"),
            ("MONGODB_URI_ANALYTICS", "mongodb://a"),
        ]));
        let name = |n: Option<&str>| sources.select(n).map(|s| s.name.clone()).ok();
        assert_eq!(name(Some("analytics")).as_deref(), Some("analytics"));
        assert_eq!(
            name(Some("mongodb-atlas")).as_deref(),
            Some("mongodb-atlas")
        );
        assert_eq!(name(None).as_deref(), Some("mongodb-atlas"));
        let err = sources.select(Some("nope")).expect_err("unknown");
        assert!(
            err.to_string().contains("mongodb-atlas, analytics"),
            "{err}"
        );
    }
}
