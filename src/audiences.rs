//! Which audiences a sync writes to: stable object names, each stream's audience, and who is in an
//! audience already (for update-only streams).

use crate::catalog::{ConfiguredCatalog, SyncMode};
use crate::config::{Config, EventsStream};
use crate::error::ConnectorError;
use crate::mailchimp::client::Client;
use crate::mailchimp::member::{email_key, EmailKey};
use crate::mailchimp::model::ListInfo;
use crate::protocol::StreamKey;
use futures::{StreamExt, TryStreamExt};
use rustc_hash::FxHashSet;

/// Object names are `audience_` and the List ID: Mailchimp never changes a List ID, so a renamed
/// audience keeps its object, and the ID is shown in Mailchimp under Audience → Settings.
const OBJECT_PREFIX: &str = "audience_";

/// An audience's events object is its object name followed by this.
pub const EVENTS_SUFFIX: &str = "_events";

/// Contacts per page when reading who is in an audience (Mailchimp's maximum).
const PAGE: u64 = 1000;

/// The destination object name of an audience.
pub fn object_name(list_id: &str) -> String {
    format!("{OBJECT_PREFIX}{list_id}")
}

/// The destination object name of an audience's events.
pub fn events_object_name(list_id: &str) -> String {
    format!("{OBJECT_PREFIX}{list_id}{EVENTS_SUFFIX}")
}

/// The streams of one audience: its List ID and the catalog's streams that write to it.
#[derive(Debug, Clone)]
pub struct AudienceStreams {
    pub list_id: String,
    pub catalog: ConfiguredCatalog,
    /// The events streams among them, with their fixed event name when there is one.
    pub events: Vec<(StreamKey, Option<String>)>,
}

impl AudienceStreams {
    /// Whether a stream of this audience changes existing contacts only (who exists must be read).
    pub fn has_update_stream(&self) -> bool {
        self.catalog.streams.iter().any(|s| s.mode() == SyncMode::Update)
    }
}

/// Groups the config's catalog streams by audience (see `group`).
pub fn group_streams(
    config: &Config,
    catalog: &ConfiguredCatalog,
) -> Result<Vec<AudienceStreams>, ConnectorError> {
    group(&config.list_id, &config.events_streams, catalog)
}

/// Groups the catalog's streams by audience, in the order audiences first appear. A stream without
/// a destination object writes to the config's audience (as events when `events_streams` names
/// it); a name that is not an audience object, or a mode that does not fit the stream, fails here,
/// before anything is read or written.
pub fn group(
    config_list_id: &str,
    events_streams: &[EventsStream],
    catalog: &ConfiguredCatalog,
) -> Result<Vec<AudienceStreams>, ConnectorError> {
    let mut groups: Vec<AudienceStreams> = Vec::new();
    for stream in &catalog.streams {
        let key = stream.key().to_string();
        let (list_id, events) = match stream.destination_object_name.as_deref() {
            None | Some("") => {
                let classic = events_streams.iter().find(|e| e.stream == stream.stream.name);
                (config_list_id, classic.map(|e| e.event_name.clone()))
            }
            Some(name) => {
                let id = name.strip_prefix(OBJECT_PREFIX).filter(|id| !id.is_empty()).ok_or_else(|| {
                    unknown_object(&key, name, "object names are 'audience_' and a List ID")
                })?;
                match id.strip_suffix(EVENTS_SUFFIX) {
                    Some(id) => (id, Some(None)),
                    None => (id, None),
                }
            }
        };
        check_mode(&key, stream.mode(), events.is_some())?;
        let at = match groups.iter().position(|g| g.list_id == list_id) {
            Some(at) => at,
            None => {
                groups.push(AudienceStreams {
                    list_id: list_id.to_string(),
                    catalog: ConfiguredCatalog { streams: Vec::new() },
                    events: Vec::new(),
                });
                groups.len() - 1
            }
        };
        groups[at].catalog.streams.push(stream.clone());
        if let Some(name) = events {
            groups[at].events.push((stream.key(), name));
        }
    }
    Ok(groups)
}

/// Events streams append; contacts streams never do.
fn check_mode(stream: &str, mode: SyncMode, events: bool) -> Result<(), ConnectorError> {
    match (events, mode) {
        (true, SyncMode::Append) | (false, SyncMode::AppendDedup | SyncMode::Update | SyncMode::SoftDelete) => Ok(()),
        (true, mode) => Err(ConnectorError::config(format!(
            "Stream '{stream}' is an events stream but uses the sync mode '{}': events are posted one per record, \
             so use 'append' (Incremental - Append).",
            mode.as_str()
        ))),
        (false, _) => Err(ConnectorError::config(format!(
            "Stream '{stream}' uses the sync mode 'append', which this destination takes only for events streams \
             (an audience's events object, or a stream listed in Events streams). For contacts use \
             'Incremental - Deduped'."
        ))),
    }
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
        let known = |list: &ListInfo| object_name(&list.id) == name || events_object_name(&list.id) == name;
        if !lists.iter().any(known) {
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
            group("cfg", &[], &catalog(&[Some("audience_b"), None, Some("audience_b"), Some("")])).unwrap();
        let summary: Vec<(&str, usize)> =
            groups.iter().map(|g| (g.list_id.as_str(), g.catalog.streams.len())).collect();
        assert_eq!(summary, [("b", 2), ("cfg", 2)]);
    }

    #[test]
    fn a_name_that_is_not_an_audience_object_fails_naming_the_stream() {
        for name in ["Newsletter", "audience_"] {
            let error = group("cfg", &[], &catalog(&[Some(name)])).unwrap_err();
            assert_eq!(error.failure_type, crate::error::FailureType::ConfigError);
            assert!(error.message.contains("'s0'") && error.message.contains(name), "{}", error.message);
        }
    }
}
