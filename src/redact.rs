//! Keeps personal data and secrets out of logs: email addresses are masked and the API key (with
//! everything derived from it) is removed wherever text is shown to people.

/// Masks one email address: `ada.lovelace@example.com` → `a***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => {
            let first: String = email.chars().take(1).collect();
            format!("{first}***")
        }
    }
}

/// Masks every email-like word in free text (error messages, input excerpts).
pub fn mask_emails_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let is_word = |c: char| c.is_alphanumeric() || "._%+-'".contains(c);
        let start = rest[..at]
            .rfind(|c: char| !is_word(c))
            .map(|i| i + rest[i..].chars().next().map_or(1, char::len_utf8))
            .unwrap_or(0);
        let end = rest[at + 1..]
            .find(|c: char| !(c.is_alphanumeric() || c == '.' || c == '-'))
            .map(|i| at + 1 + i)
            .unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        if start < at && end > at + 1 {
            out.push_str(&mask_email(&rest[start..end]));
        } else {
            out.push_str(&rest[start..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The forms in which a server's text may quote an API key: the key, its part before the data
/// center, and the HTTP Basic token built from it (`user:key` in base64).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    forms: Vec<String>,
}

impl Secrets {
    pub fn of_key(key: &str, basic_user: &str) -> Self {
        let mut forms = vec![key.to_string(), base64(format!("{basic_user}:{key}").as_bytes())];
        if let Some((head, _)) = key.rsplit_once('-') {
            // The secret part alone is still a secret; a short one could match ordinary words.
            if head.len() >= 8 {
                forms.push(head.to_string());
            }
        }
        forms.retain(|f| !f.is_empty());
        // Longest first, so that the key is replaced before its head.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        Self { forms }
    }

    /// `text` with every form of the key replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for form in &self.forms {
            if text.contains(form.as_str()) {
                text = text.replace(form.as_str(), "[redacted]");
            }
        }
        text
    }
}

/// Standard base64 with padding (RFC 4648), as HTTP Basic authentication uses it.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A short excerpt of untrusted input for an error message: at most `max` characters, emails masked.
pub fn excerpt(text: &str, max: usize) -> String {
    // Mask before cutting, so that an address cut in half is not left half-visible.
    let masked = mask_emails_in(text);
    let mut shown: String = masked.chars().take(max).collect();
    if masked.chars().count() > max {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_a_single_address() {
        assert_eq!(mask_email("ada.lovelace@example.com"), "a***@example.com");
        assert_eq!(mask_email("no-at-sign"), "n***");
        assert_eq!(mask_email(""), "***");
    }

    #[test]
    fn masks_addresses_inside_text() {
        assert_eq!(
            mask_emails_in("Bob@Mail.io looks fake or invalid, please enter a real email address."),
            "B***@Mail.io looks fake or invalid, please enter a real email address."
        );
        assert_eq!(mask_emails_in("{\"email\":\"x.y@z.org\"}"), "{\"email\":\"x***@z.org\"}");
        assert_eq!(mask_emails_in("a @ b and @c"), "a @ b and @c");
        assert_eq!(mask_emails_in("no address here"), "no address here");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn every_form_of_the_key_is_scrubbed() {
        let key = "0123456789abcdef0123456789abcdef-us6";
        let secrets = Secrets::of_key(key, "destination-mailchimp");
        let token = base64(format!("destination-mailchimp:{key}").as_bytes());
        let text =
            format!("key {key}, header Basic {token}, head 0123456789abcdef0123456789abcdef; us6 stays");
        let scrubbed = secrets.scrub(&text);
        assert_eq!(scrubbed, "key [redacted], header Basic [redacted], head [redacted]; us6 stays");
    }

    #[test]
    fn excerpt_cuts_on_characters_and_masks() {
        assert_eq!(excerpt("ééééé", 3), "ééé…");
        assert_eq!(excerpt("mail jo@x.io now", 100), "mail j***@x.io now");
        assert_eq!(excerpt("to carol.smith@x.io", 8), "to c***@…", "no half-visible address");
    }
}
