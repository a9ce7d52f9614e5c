//! The pages' templates, embedded in the binary (`include_str!`) and parsed once. Their names
//! end in `.html`, so minijinja escapes every value put into them: data never becomes markup.

use std::sync::OnceLock;

use minijinja::Environment;
use minijinja::value::{Serde, Value};

const TEMPLATES: [(&str, &str); 6] = [
    ("base.html", include_str!("templates/base.html")),
    ("signin.html", include_str!("templates/signin.html")),
    ("list.html", include_str!("templates/list.html")),
    ("detail.html", include_str!("templates/detail.html")),
    ("providers.html", include_str!("templates/providers.html")),
    ("message.html", include_str!("templates/message.html")),
];

fn environment() -> &'static Result<Environment<'static>, minijinja::Error> {
    static ENV: OnceLock<Result<Environment<'static>, minijinja::Error>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Lenient undefined values (the default): `{% if x %}` is how optional parts are written.
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(env)
    })
}

/// The page `name` with `context` (a JSON object), or why it could not be made (a bug).
pub fn render(name: &str, context: &serde_json::Value) -> Result<String, String> {
    let env = environment().as_ref().map_err(|e| format!("the console's templates do not parse: {e:#}"))?;
    let template = env.get_template(name).map_err(|e| e.to_string())?;
    template.render(Value::from(Serde(context))).map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_template_parses_and_escapes() {
        assert!(environment().is_ok(), "{:?}", environment().as_ref().err());
        let hostile = r#""><img src=x onerror=alert(1)><script>alert(2)</script>"#;
        let html = render(
            "message.html",
            &json!({"title": "t", "message": hostile, "back_href": "/console", "back_label": "b"}),
        )
        .unwrap();
        assert!(!html.contains("<script>alert") && !html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(2)"), "{html}");
    }
}
