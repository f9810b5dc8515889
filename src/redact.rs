//! Keeps personal data out of logs: email addresses are masked wherever text is shown to people.

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
    fn excerpt_cuts_on_characters_and_masks() {
        assert_eq!(excerpt("ééééé", 3), "ééé…");
        assert_eq!(excerpt("mail jo@x.io now", 100), "mail j***@x.io now");
        assert_eq!(excerpt("to carol.smith@x.io", 8), "to c***@…", "no half-visible address");
    }
}
