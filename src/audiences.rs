//! Which audiences a sync writes to: stable object names, each stream's audience, and who is in an
//! audience already (for update-only streams).

use crate::catalog::{ConfiguredCatalog, SyncMode};
use crate::config::Config;
use crate::error::ConnectorError;
use crate::mailchimp::client::Client;
use crate::mailchimp::member::{email_key, EmailKey};
use crate::mailchimp::model::ListInfo;
use futures::{StreamExt, TryStreamExt};
use rustc_hash::FxHashSet;

/// Object names are `audience_` and the List ID: Mailchimp never changes a List ID, so a renamed
/// audience keeps its object, and the ID is shown in Mailchimp under Audience → Settings.
const OBJECT_PREFIX: &str = "audience_";

/// Contacts per page when reading who is in an audience (Mailchimp's maximum).
const PAGE: u64 = 1000;

/// The destination object name of an audience.
pub fn object_name(list_id: &str) -> String {
    format!("{OBJECT_PREFIX}{list_id}")
}

/// The streams of one audience: its List ID and the catalog's streams that write to it.
#[derive(Debug, Clone)]
pub struct AudienceStreams {
    pub list_id: String,
    pub catalog: ConfiguredCatalog,
}

impl AudienceStreams {
    /// Whether a stream of this audience changes existing contacts only (who exists must be read).
    pub fn has_update_stream(&self) -> bool {
        self.catalog.streams.iter().any(|s| s.mode() == SyncMode::Update)
    }
}

/// Groups the catalog's streams by audience, in the order audiences first appear. A stream without
/// a destination object writes to the config's audience; a name that is not an audience object
/// fails here, before anything is read or written.
pub fn group_streams(
    config_list_id: &str,
    catalog: &ConfiguredCatalog,
) -> Result<Vec<AudienceStreams>, ConnectorError> {
    let mut groups: Vec<AudienceStreams> = Vec::new();
    for stream in &catalog.streams {
        let list_id = match stream.destination_object_name.as_deref() {
            None | Some("") => config_list_id,
            Some(name) => name.strip_prefix(OBJECT_PREFIX).filter(|id| !id.is_empty()).ok_or_else(|| {
                unknown_object(&stream.key().to_string(), name, "object names are 'audience_' and a List ID")
            })?,
        };
        match groups.iter_mut().find(|g| g.list_id == list_id) {
            Some(group) => group.catalog.streams.push(stream.clone()),
            None => groups.push(AudienceStreams {
                list_id: list_id.to_string(),
                catalog: ConfiguredCatalog { streams: vec![stream.clone()] },
            }),
        }
    }
    Ok(groups)
}

/// The config as it applies to an audience's streams: `field_mappings` name the configured
/// audience's merge fields and groups, so streams of other audiences (chosen on a mapping screen,
/// whose fields the platform already renamed) are matched by name only.
pub fn config_for<'a>(config: &'a Config, route: &AudienceStreams) -> std::borrow::Cow<'a, Config> {
    if route.list_id == config.list_id || config.field_mappings.is_empty() {
        return std::borrow::Cow::Borrowed(config);
    }
    std::borrow::Cow::Owned(Config { field_mappings: Vec::new(), ..config.clone() })
}

/// Fails, naming the stream and the object, when a stream's destination object is not one of the
/// audiences the key can see (checked before any write).
pub async fn check_objects_exist(client: &Client, catalog: &ConfiguredCatalog) -> Result<(), ConnectorError> {
    let named: Vec<_> = catalog
        .streams
        .iter()
        .filter(|s| s.destination_object_name.as_deref().is_some_and(|n| !n.is_empty()))
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let lists = client.lists().await?;
    for stream in named {
        let name = stream.destination_object_name.as_deref().unwrap_or_default();
        if !lists.iter().any(|list| object_name(&list.id) == name) {
            return Err(unknown_object(&stream.key().to_string(), name, &known_objects(&lists)));
        }
    }
    Ok(())
}

fn unknown_object(stream: &str, name: &str, known: &str) -> ConnectorError {
    ConnectorError::config(format!(
        "Stream '{stream}' writes to the destination object '{name}', which is not an audience this API key \
         can see ({known}). Refresh the destination's objects and choose the audience again in the \
         connection's mapping."
    ))
}

/// The objects the key can see, with their audiences' names, for an error message.
fn known_objects(lists: &[ListInfo]) -> String {
    if lists.is_empty() {
        return "it sees none".into();
    }
    let names: Vec<String> = lists.iter().map(|l| format!("{} = '{}'", object_name(&l.id), l.name)).collect();
    format!("it sees {}", names.join(", "))
}

/// Everyone in the audience (archived contacts are not listed, so they count as not in it): one
/// request per 1,000 contacts, as many at once as the connection budget allows.
pub async fn existing_contacts(client: &Client) -> Result<FxHashSet<EmailKey>, ConnectorError> {
    let first = client.addresses_page(0, PAGE).await?;
    let total = first.total_items;
    let mut keys: FxHashSet<EmailKey> = FxHashSet::default();
    keys.reserve(total as usize);
    keys.extend(first.members.iter().map(|m| email_key(&m.email_address)));
    let offsets = (1..total.div_ceil(PAGE)).map(|i| i * PAGE);
    let mut pages = futures::stream::iter(offsets.map(|offset| client.addresses_page(offset, PAGE)))
        .buffer_unordered(client.budget().max());
    while let Some(page) = pages.try_next().await? {
        keys.extend(page.members.iter().map(|m| email_key(&m.email_address)));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog(objects: &[Option<&str>]) -> ConfiguredCatalog {
        let streams: Vec<_> = objects
            .iter()
            .enumerate()
            .map(|(i, object)| {
                json!({"stream": {"name": format!("s{i}"), "json_schema": {}}, "destination_sync_mode": "append_dedup",
                       "destination_object_name": object})
            })
            .collect();
        serde_json::from_value(json!({ "streams": streams })).unwrap()
    }

    #[test]
    fn streams_are_grouped_by_audience_and_unnamed_ones_use_the_configured_audience() {
        let groups =
            group_streams("cfg", &catalog(&[Some("audience_b"), None, Some("audience_b"), Some("")]))
                .unwrap();
        let summary: Vec<(&str, usize)> =
            groups.iter().map(|g| (g.list_id.as_str(), g.catalog.streams.len())).collect();
        assert_eq!(summary, [("b", 2), ("cfg", 2)]);
    }

    #[test]
    fn a_name_that_is_not_an_audience_object_fails_naming_the_stream() {
        for name in ["Newsletter", "audience_"] {
            let error = group_streams("cfg", &catalog(&[Some(name)])).unwrap_err();
            assert_eq!(error.failure_type, crate::error::FailureType::ConfigError);
            assert!(error.message.contains("'s0'") && error.message.contains(name), "{}", error.message);
        }
    }
}
