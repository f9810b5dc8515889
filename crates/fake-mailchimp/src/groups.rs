//! The fake's groups: interest categories and their interests as Mailchimp documents them
//! (`/lists/{id}/interest-categories…`), and members' `interests` (interest id → bool).

use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Mailchimp's category types: checkboxes, dropdown, radio, hidden.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FakeCategory {
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub interests: Vec<FakeInterest>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FakeInterest {
    pub id: String,
    pub name: String,
}

/// An audience's groups, with ids made the way Mailchimp's look (10 hex characters).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Groups {
    pub categories: Vec<FakeCategory>,
    next_id: u64,
}

impl Groups {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{:010x}", 0x009a_0000_0000_u64 + self.next_id * 7919)
    }

    /// Adds a category with these interests (test setup); returns its id.
    pub fn add_category(&mut self, title: &str, kind: &str, interests: &[&str]) -> String {
        let id = self.new_id();
        self.categories.push(FakeCategory {
            id: id.clone(),
            title: title.into(),
            kind: kind.into(),
            interests: vec![],
        });
        for name in interests {
            self.add_interest(&id, name);
        }
        id
    }

    /// Adds an interest to a category; `None` when there is no such category or the name is taken.
    pub fn add_interest(&mut self, category_id: &str, name: &str) -> Option<FakeInterest> {
        let id = self.new_id();
        let category = self.categories.iter_mut().find(|c| c.id == category_id)?;
        if category.interests.iter().any(|i| i.name.eq_ignore_ascii_case(name)) {
            return None;
        }
        let interest = FakeInterest { id, name: name.into() };
        category.interests.push(interest.clone());
        Some(interest)
    }

    /// The id of the interest called `name` in the category titled `title` (test assertions).
    pub fn interest_id(&self, title: &str, name: &str) -> Option<String> {
        let category = self.categories.iter().find(|c| c.title == title)?;
        category.interests.iter().find(|i| i.name == name).map(|i| i.id.clone())
    }

    /// `GET …/interest-categories`: one page.
    pub fn categories_page(&self, list_id: &str, offset: usize, count: usize) -> Value {
        let page: Vec<Value> = self
            .categories
            .iter()
            .enumerate()
            .skip(offset)
            .take(count)
            .map(|(i, c)| json!({"list_id": list_id, "id": c.id, "title": c.title, "display_order": i, "type": c.kind}))
            .collect();
        json!({"list_id": list_id, "categories": page, "total_items": self.categories.len()})
    }

    /// `GET …/interest-categories/{id}/interests`: one page, or `None` for an unknown category.
    pub fn interests_page(
        &self,
        list_id: &str,
        category_id: &str,
        offset: usize,
        count: usize,
    ) -> Option<Value> {
        let category = self.categories.iter().find(|c| c.id == category_id)?;
        let page: Vec<Value> = category
            .interests
            .iter()
            .enumerate()
            .skip(offset)
            .take(count)
            .map(|(i, interest)| interest_json(list_id, category_id, interest, i))
            .collect();
        Some(json!({"interests": page, "list_id": list_id, "category_id": category_id,
                    "total_items": category.interests.len()}))
    }

    /// Checks a member's `interests` and returns them, or the error Mailchimp gives for an
    /// interest id the audience does not have.
    pub fn check(&self, interests: &Map<String, Value>) -> Result<BTreeMap<String, bool>, String> {
        let mut checked = BTreeMap::new();
        for (id, value) in interests {
            let known = self.categories.iter().any(|c| c.interests.iter().any(|i| &i.id == id));
            match (known, value.as_bool()) {
                (true, Some(on)) => {
                    checked.insert(id.clone(), on);
                }
                (false, _) => return Err(format!("Invalid interest ID: '{id}'.")),
                (true, None) => return Err(format!("Interest '{id}' must be true or false.")),
            }
        }
        Ok(checked)
    }

    /// Every interest of the audience with the member's choice (false when never set), as a member
    /// object shows them.
    pub fn member_interests(&self, chosen: &BTreeMap<String, bool>) -> Value {
        let all: Map<String, Value> = self
            .categories
            .iter()
            .flat_map(|c| &c.interests)
            .map(|i| (i.id.clone(), Value::Bool(chosen.get(&i.id).copied().unwrap_or(false))))
            .collect();
        Value::Object(all)
    }
}

pub fn interest_json(list_id: &str, category_id: &str, interest: &FakeInterest, order: usize) -> Value {
    json!({"category_id": category_id, "list_id": list_id, "id": interest.id, "name": interest.name,
           "subscriber_count": "0", "display_order": order})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interests_are_checked_by_id_and_shown_for_every_interest() {
        let mut groups = Groups::default();
        let category = groups.add_category("Newsletter topics", "checkboxes", &["Product news", "Events"]);
        let news = groups.interest_id("Newsletter topics", "Product news").unwrap();
        assert!(groups.add_interest(&category, "events").is_none(), "names are unique in a category");
        let chosen = groups.check(json!({news.clone(): true}).as_object().unwrap()).unwrap();
        let shown = groups.member_interests(&chosen);
        assert_eq!(shown.as_object().unwrap().len(), 2);
        assert_eq!(shown[&news], true);
        let error = groups.check(json!({"0000000000": true}).as_object().unwrap()).unwrap_err();
        assert!(error.starts_with("Invalid interest ID"), "{error}");
    }
}
