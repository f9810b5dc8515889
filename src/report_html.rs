//! The preview report as one self-contained HTML page (no script, no outside resource) that a
//! marketer can open in a browser: counts, rejections with examples, consent, deletions, tags and
//! the field mapping.

use crate::preview::Report;
use crate::progress::thousands;
use std::fmt::Write;

/// The whole page. Every text from the input or the audience is escaped.
pub fn page(report: &Report) -> String {
    let mut html = String::with_capacity(8 * 1024);
    html.push_str(HEAD);
    let _ = write!(
        html,
        "<h1>What a sync would do</h1><p class=\"lead\">Audience <b>{}</b> (List ID {}). Nothing was written: \
         this is a preview, read from Mailchimp.</p>",
        escape(&report.audience),
        escape(&report.list_id)
    );
    html.push_str("<section class=\"counts\">");
    for (key, label, value) in [
        ("records", "records read", report.records),
        ("contacts", "distinct contacts", report.contacts),
        ("created", "would be created", report.created),
        ("updated", "would be updated", report.updated),
        ("rejected", "records rejected", report.rejected),
    ] {
        let _ = write!(
            html,
            "<div class=\"count {key}\"><span data-count=\"{key}\">{}</span>{label}</div>",
            thousands(value)
        );
    }
    html.push_str("</section>");
    rejections(&mut html, report);
    consent_and_tags(&mut html, report);
    let _ = write!(html, "<section><h2>Field mapping</h2><ul>{}</ul></section>", items(&report.mapping));
    if !report.warnings.is_empty() {
        let _ = write!(
            html,
            "<section class=\"warnings\"><h2>Warnings</h2><ul>{}</ul></section>",
            items(&report.warnings)
        );
    }
    let _ = writeln!(
        html,
        "<footer>{} states read. Current statuses and tags came from {} {}.</footer></main></body></html>",
        thousands(report.states),
        thousands(report.lookup_requests),
        if report.lookup == "lookups" {
            "lookups, one per contact"
        } else {
            "pages of the audience's members"
        }
    );
    html
}

/// Rejections by reason, with a few examples each (addresses masked).
fn rejections(html: &mut String, report: &Report) {
    html.push_str("<section><h2>Rejected records</h2>");
    if report.rejected_by_reason.is_empty() {
        html.push_str("<p>None: every record can become a contact.</p></section>");
        return;
    }
    html.push_str("<table><tr><th>records</th><th>reason</th><th>examples (addresses masked)</th></tr>");
    for (reason, count) in &report.rejected_by_reason {
        let examples: Vec<String> = report
            .rejected_examples
            .get(reason)
            .map(|e| e.iter().map(|x| format!("<code>{}</code>", escape(x))).collect())
            .unwrap_or_default();
        let _ = write!(
            html,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            thousands(*count),
            escape(reason),
            examples.join("<br>")
        );
    }
    html.push_str("</table></section>");
}

/// Status changes, deletions, tag and group changes: what the sync would change beyond fields.
fn consent_and_tags(html: &mut String, report: &Report) {
    let mut lines: Vec<String> = report
        .status_changes
        .iter()
        .map(|(change, n)| format!("{} contact(s): {change}", thousands(*n)))
        .collect();
    lines.extend(report.effects.lines("would be"));
    lines.extend(
        report.groups_joined.iter().map(|(group, n)| format!("{} would join {group}", thousands(*n))),
    );
    lines
        .extend(report.groups_left.iter().map(|(group, n)| format!("{} would leave {group}", thousands(*n))));
    lines.extend(crate::preview::events_line(report));
    lines.push(format!(
        "Tags: {} tag(s) would be added to {} contact(s).",
        thousands(report.tags_added),
        thousands(report.contacts_tagged)
    ));
    let _ = write!(html, "<section><h2>Consent, deletions and tags</h2><ul>{}</ul></section>", items(&lines));
}

fn items(lines: &[String]) -> String {
    lines.iter().map(|line| format!("<li>{}</li>", escape(line))).collect()
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const HEAD: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>destination-mailchimp: preview</title><style>\
body{font-family:\"DejaVu Sans\",Arial,sans-serif;margin:0;background:#f6f6f9;color:#1a1a2e}\
main{max-width:920px;margin:0 auto;padding:24px}h1{font-size:24px;margin:0 0 6px}\
.lead{color:#444;margin:0 0 18px}section{background:#fff;border-radius:10px;padding:14px 18px;\
margin-bottom:14px;box-shadow:0 1px 3px #0002}h2{font-size:16px;margin:0 0 10px}\
.counts{display:flex;gap:10px;background:none;box-shadow:none;padding:0}\
.count{flex:1;background:#fff;border-radius:10px;padding:12px;box-shadow:0 1px 3px #0002;font-size:13px;color:#555}\
.count span{display:block;font-size:26px;font-weight:700;color:#1a1a2e}\
.created span{color:#1d7a46}.updated span{color:#2f5fd0}.rejected span{color:#b3261e}\
table{border-collapse:collapse;width:100%;font-size:13.5px}th,td{text-align:left;padding:6px 8px;\
border-bottom:1px solid #eee;vertical-align:top}td.n{text-align:right;white-space:nowrap}\
code{font-size:12px;background:#f3f3f7;padding:1px 4px;border-radius:4px;word-break:break-all}\
li{margin:3px 0;font-size:14px}.warnings{border-left:4px solid #e0a100}\
footer{font-size:12.5px;color:#666;margin-top:6px}</style></head><body><main>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_input_is_escaped_and_counts_are_marked() {
        let mut report = Report {
            audience: "Ads <\"Q4\"> & more".into(),
            list_id: "l1".into(),
            records: 1234,
            rejected: 1,
            ..Default::default()
        };
        report.rejected_by_reason.insert("the email field 'e' is <b>".into(), 1);
        report
            .rejected_examples
            .insert("the email field 'e' is <b>".into(), vec!["{\"e\":\"<script>\"}".into()]);
        let html = page(&report);
        assert!(html.contains("Ads &lt;&quot;Q4&quot;&gt; &amp; more"), "{html}");
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(html.contains("<span data-count=\"records\">1,234</span>"));
        assert!(html.contains("the email field &#39;e&#39; is &lt;b&gt;"));
    }
}
