//! The `check` command: is the config valid, is the key accepted, does the audience exist, and can
//! rejected records be written to their bucket?

use crate::config;
use crate::error::ConnectorError;
use crate::mailchimp::client::Client;
use std::path::Path;
use std::time::Duration;

/// Check answers within seconds: a brief retry budget for passing errors.
const CHECK_RETRY_TIME: Duration = Duration::from_secs(5);

/// Returns the SUCCEEDED message, or the error whose message becomes the FAILED message.
pub async fn check(config_path: &Path) -> Result<String, ConnectorError> {
    let config = config::load(config_path)?;
    let client = Client::new(&config.client_settings())?.with_max_retry_time(CHECK_RETRY_TIME);
    client.ping().await?;
    let audience = client.audience().await?;
    let (list, merge_fields) = (&audience.list, &audience.merge_fields);
    let required: Vec<&str> = merge_fields.iter().filter(|f| f.required).map(|f| f.tag.as_str()).collect();
    let mut message = format!(
        "Connected to the Mailchimp audience '{}' (List ID {}, {} contacts, {} merge fields, {} group categories).",
        list.name,
        list.id,
        list.stats.member_count,
        merge_fields.len(),
        audience.categories.len()
    );
    if !required.is_empty() {
        message.push_str(&format!(
            " The audience requires the merge fields {}: new contacts without them are rejected unless \
             skip_merge_validation is set.",
            required.join(", ")
        ));
    }
    // Explicit mappings are checked against the audience as a sync would (no catalog here).
    let no_streams = crate::catalog::ConfiguredCatalog { streams: Vec::new() };
    let mapper = crate::mapping::Mapper::new(&config, &no_streams, merge_fields, &audience.categories)?
        .with_gdpr(list.marketing_permissions);
    if let Some(warning) = mapper.permissions_not_applicable() {
        message.push(' ');
        message.push_str(&warning);
    }
    if let Some(settings) = &config.rejected_storage {
        let store = crate::rejected::RejectedStore::new(settings, None, CHECK_RETRY_TIME)?;
        store.check().await?;
        message.push_str(&format!(" Rejected records can be written to {}.", store.bucket_location()));
    }
    Ok(message)
}
