//! Building `conditions` strings from data. Asset names and serials come from the field,
//! so every literal is escaped: a value can never end its string early, start a new
//! clause or widen a query.

use std::fmt;

use super::error::ConnectWiseError;

/// A field path such as `name`, `type/name` or `manufacturer/id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field(String);

impl Field {
    /// Paths come from configuration, so they are checked rather than trusted.
    pub fn new(path: &str) -> Result<Self, ConnectWiseError> {
        let valid = !path.is_empty()
            && path.split('/').all(|segment| {
                !segment.is_empty()
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !segment.starts_with(|c: char| c.is_ascii_digit())
            });
        if valid {
            Ok(Self(path.to_string()))
        } else {
            Err(ConnectWiseError::invalid(
                "conditions",
                format!("`{path}` is not a field path (letters, digits, `_`, `/`)"),
            ))
        }
    }

    pub fn eq(&self, value: impl Into<Literal>) -> Condition {
        Condition(format!("{}={}", self.0, value.into()))
    }

    /// `path >= [datetime]`; the datetime is ConnectWise's own (`2024-05-01T10:00:00Z`),
    /// checked to hold only its characters so it cannot end the bracket early.
    pub fn ge_datetime(&self, datetime: &str) -> Result<Condition, ConnectWiseError> {
        if datetime.is_empty()
            || !datetime
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-:.+".contains(c))
        {
            return Err(ConnectWiseError::invalid(
                "conditions",
                format!("`{datetime}` is not a datetime"),
            ));
        }
        Ok(Condition(format!("{}>=[{datetime}]", self.0)))
    }

    pub fn ne(&self, value: impl Into<Literal>) -> Condition {
        Condition(format!("{}!={}", self.0, value.into()))
    }

    /// `path in (…)`; an empty list matches nothing.
    pub fn is_in<L: Into<Literal>>(&self, values: impl IntoIterator<Item = L>) -> Condition {
        let items: Vec<String> = values.into_iter().map(|v| v.into().to_string()).collect();
        if items.is_empty() {
            // ConnectWise rejects `in ()`; `id<0` is the empty set for every record.
            return Condition("id<0".into());
        }
        Condition(format!("{} in ({})", self.0, items.join(",")))
    }

    /// `path in (…)` over as many conditions as it takes for each to stay within
    /// `max_encoded` characters once percent-encoded in a URL: ConnectWise refuses URLs
    /// much over 2,000 characters.
    pub fn is_in_chunks<L: Into<Literal>>(
        &self,
        values: impl IntoIterator<Item = L>,
        max_encoded: usize,
    ) -> Vec<Condition> {
        let overhead = encoded_len(&format!("{} in ()", self.0));
        let mut chunks: Vec<Vec<String>> = Vec::new();
        let mut size = overhead;
        for value in values {
            let item = value.into().to_string();
            let item_size = encoded_len(&item) + 3;
            if chunks.is_empty() || size + item_size > max_encoded {
                chunks.push(Vec::new());
                size = overhead;
            }
            size += item_size;
            if let Some(chunk) = chunks.last_mut() {
                chunk.push(item);
            }
        }
        chunks
            .into_iter()
            .map(|items| Condition(format!("{} in ({})", self.0, items.join(","))))
            .collect()
    }
}

/// Characters `text` takes in a URL query, percent-encoded.
pub fn encoded_len(text: &str) -> usize {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                1
            } else {
                3 * c.len_utf8()
            }
        })
        .sum()
}

/// A literal value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl From<&str> for Literal {
    fn from(v: &str) -> Self {
        Self::Text(v.to_string())
    }
}
impl From<String> for Literal {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<&String> for Literal {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}
impl From<i64> for Literal {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<bool> for Literal {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => {
                f.write_str("\"")?;
                for c in text.chars() {
                    match c {
                        '\\' => f.write_str("\\\\")?,
                        '"' => f.write_str("\\\"")?,
                        // ConnectWise reads `[` as the start of a datetime or a LIKE set.
                        '[' => f.write_str("[[]")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Self::Int(n) => write!(f, "{n}"),
            Self::Bool(true) => f.write_str("True"),
            Self::Bool(false) => f.write_str("False"),
        }
    }
}

/// A complete condition expression; combining keeps precedence explicit with parentheses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition(String);

impl Condition {
    /// Wraps a condition string given by a user (the actions' `conditions` input).
    pub fn raw(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn and(self, other: &Condition) -> Condition {
        Condition(format!("({}) and ({})", self.0, other.0))
    }

    pub fn or(self, other: &Condition) -> Condition {
        Condition(format!("({}) or ({})", self.0, other.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_stay_inside_their_string() {
        let name = Field::new("name").unwrap();
        assert_eq!(
            name.eq(r#"x" or id>0 or name="y"#).as_str(),
            r#"name="x\" or id>0 or name=\"y""#
        );
        assert_eq!(name.eq(r"back\slash").as_str(), r#"name="back\\slash""#);
        assert_eq!(name.eq("[2016-08-20]").as_str(), r#"name="[[]2016-08-20]""#);
        assert_eq!(name.eq(r"ends with \").as_str(), r#"name="ends with \\""#);
    }

    #[test]
    fn literals_and_combinators() {
        let id = Field::new("id").unwrap();
        let flag = Field::new("inactiveFlag").unwrap();
        let c = id.is_in([1i64, 2, 3]).and(&flag.eq(false));
        let keys: Vec<String> = (0..200).map(|i| format!("asset-key-{i:04}")).collect();
        let chunks = Field::new("value").unwrap().is_in_chunks(keys.iter(), 600);
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| encoded_len(c.as_str()) <= 600));
        let rejoined: usize = chunks
            .iter()
            .map(|c| c.as_str().matches("asset-key-").count())
            .sum();
        assert_eq!(rejoined, 200);
        assert_eq!(c.as_str(), "(id in (1,2,3)) and (inactiveFlag=False)");
        assert_eq!(id.is_in(Vec::<i64>::new()).as_str(), "id<0");
        assert_eq!(
            Field::new("type/name").unwrap().ne("Server").as_str(),
            r#"type/name!="Server""#
        );
    }

    #[test]
    fn field_paths_are_checked() {
        for bad in ["", "name=1 or id", "a//b", "na me", "1abc"] {
            assert!(Field::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
