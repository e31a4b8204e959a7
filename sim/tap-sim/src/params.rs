//! Query-string parameters, decoded once.

/// The decoded `key=value` pairs of a query string, in order. `+` decodes
/// to a space, as in any form-encoded query.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        Params(
            url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Every value given for `key`, e.g. a repeated `threatType`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of `key`; a repeated key is an error (its text is the
    /// 400 body).
    pub fn single(&self, key: &str) -> Result<Option<&str>, String> {
        match self.all(key).as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(format!("The parameter {key} may be given only once.")),
        }
    }
}
