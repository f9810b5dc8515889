//! Groups: a record's value for a group category (a list of group names, or a comma-separated
//! string) → the contact's whole selection in that category, by Mailchimp's interest ids.

use crate::mailchimp::model::Category;
use serde_json::Value;

/// A category's selection read from one record value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Every interest of the category: (id, chosen).
    pub interests: Vec<(String, bool)>,
    /// Names the record chose that the category does not have.
    pub unknown: Vec<String>,
}

/// Reads a value for a category. `Ok(None)`: null, the contact's groups there stay as they are;
/// an empty list or string clears the category; names match ignoring case and surrounding space.
/// A radio or dropdown category takes one name.
pub fn selection(category: &Category, value: &Value) -> Result<Option<Selection>, String> {
    let names: Vec<String> = match value {
        Value::Null => return Ok(None),
        Value::String(text) => {
            text.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect()
        }
        Value::Array(items) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(name) if !name.trim().is_empty() => names.push(name.trim().to_string()),
                    Value::String(_) | Value::Null => {}
                    _ => return Err("not a list of group names".into()),
                }
            }
            names
        }
        _ => return Err("not a list of group names or a comma-separated string".into()),
    };
    let mut distinct: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !distinct.iter().any(|d| d.eq_ignore_ascii_case(&name)) {
            distinct.push(name);
        }
    }
    if category.single_choice() && distinct.len() > 1 {
        return Err(format!("more than one group for the {} category '{}'", category.kind, category.title));
    }
    let chosen = |interest: &str| distinct.iter().any(|n| n.eq_ignore_ascii_case(interest.trim()));
    let interests = category.interests.iter().map(|i| (i.id.clone(), chosen(&i.name))).collect();
    let known = |name: &String| category.interests.iter().any(|i| i.name.trim().eq_ignore_ascii_case(name));
    let unknown = distinct.iter().filter(|n| !known(n)).cloned().collect();
    Ok(Some(Selection { interests, unknown }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailchimp::model::Interest;
    use serde_json::json;

    fn topics(kind: &str) -> Category {
        let interest = |id: &str, name: &str| Interest { id: id.into(), name: name.into() };
        Category {
            id: "c1".into(),
            title: "Newsletter topics".into(),
            kind: kind.into(),
            interests: vec![
                interest("i1", "Product news"),
                interest("i2", "Events"),
                interest("i3", "Offers"),
            ],
        }
    }

    #[test]
    fn names_become_the_whole_selection_of_the_category() {
        let expected = Selection {
            interests: vec![("i1".into(), true), ("i2".into(), false), ("i3".into(), true)],
            unknown: vec!["Webinars".into()],
        };
        for value in [
            json!([" product NEWS", "offers", "Webinars", "Offers"]),
            json!("product news, Offers ,Webinars"),
        ] {
            assert_eq!(selection(&topics("checkboxes"), &value), Ok(Some(expected.clone())), "{value}");
        }
    }

    #[test]
    fn empty_clears_null_leaves_and_single_choice_takes_one() {
        let cleared = selection(&topics("checkboxes"), &json!([])).unwrap().unwrap();
        assert!(cleared.interests.iter().all(|(_, on)| !on));
        assert_eq!(selection(&topics("checkboxes"), &json!("")).unwrap().unwrap(), cleared);
        assert_eq!(selection(&topics("checkboxes"), &json!(null)), Ok(None));
        assert!(selection(&topics("radio"), &json!(["Events"])).is_ok());
        let error = selection(&topics("radio"), &json!(["Events", "Offers"])).unwrap_err();
        assert!(error.contains("more than one group for the radio category"), "{error}");
        assert!(selection(&topics("checkboxes"), &json!(3)).is_err());
        assert!(selection(&topics("checkboxes"), &json!([{"name": "Events"}])).is_err());
    }
}
