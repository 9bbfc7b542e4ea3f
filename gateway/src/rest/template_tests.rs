//! Unit tests of `rest::template`.

use super::*;

fn lit(s: &str) -> Segment {
    Segment::Literal(s.to_owned())
}

fn var(path: &[&str], segments: Range<usize>) -> TemplateVariable {
    TemplateVariable {
        field_path: path.iter().map(|s| (*s).to_owned()).collect(),
        segments,
    }
}

#[test]
fn parses_valid_templates() {
    use Segment::{Multi, Single};
    type Case = (
        &'static str,
        Vec<Segment>,
        Vec<TemplateVariable>,
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        ("/", vec![], vec![], None),
        ("/v1", vec![lit("v1")], vec![], None),
        (
            "/v1/users/{id}",
            vec![lit("v1"), lit("users"), Single],
            vec![var(&["id"], 2..3)],
            None,
        ),
        (
            "/v1/users/{id=*}",
            vec![lit("v1"), lit("users"), Single],
            vec![var(&["id"], 2..3)],
            None,
        ),
        (
            "/v1/{name=shelves/*/books/*}",
            vec![lit("v1"), lit("shelves"), Single, lit("books"), Single],
            vec![var(&["name"], 1..5)],
            None,
        ),
        (
            "/v1/{name=**}:publish",
            vec![lit("v1"), Multi],
            vec![var(&["name"], 1..2)],
            Some("publish"),
        ),
        ("/v1/a/**", vec![lit("v1"), lit("a"), Multi], vec![], None),
        ("/v1/*/x", vec![lit("v1"), Single, lit("x")], vec![], None),
        (
            "/v1/products:batchGet",
            vec![lit("v1"), lit("products")],
            vec![],
            Some("batchGet"),
        ),
        (
            "/v1/users/{user_id}/orders:watch",
            vec![lit("v1"), lit("users"), Single, lit("orders")],
            vec![var(&["user_id"], 2..3)],
            Some("watch"),
        ),
        (
            "/v1/users/{user.id}/x/{user.name}",
            vec![lit("v1"), lit("users"), Single, lit("x"), Single],
            vec![var(&["user", "id"], 2..3), var(&["user", "name"], 4..5)],
            None,
        ),
        (
            "/v1/us%65rs/a+b@c",
            vec![lit("v1"), lit("users"), lit("a+b@c")],
            vec![],
            None,
        ),
        (
            "/v1/{x=a/*}/{y=**}",
            vec![lit("v1"), lit("a"), Single, Multi],
            vec![var(&["x"], 1..3), var(&["y"], 3..4)],
            None,
        ),
    ];
    for (text, segments, variables, verb) in cases {
        let t = PathTemplate::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(t.segments(), segments.as_slice(), "{text}");
        assert_eq!(t.variables(), variables.as_slice(), "{text}");
        assert_eq!(t.verb(), verb, "{text}");
        assert_eq!(t.as_str(), text);
        assert_eq!(t.to_string(), text);
        assert_eq!(text.parse::<PathTemplate>().unwrap(), t);
    }
}

#[test]
fn rejects_invalid_templates() {
    let cases = [
        ("/v1/{id", "unclosed '{'", 4),
        ("/v1/**/x", "'**' must be the last segment", 4),
        ("/v1/**/**", "'**' must be the last segment", 4),
        (
            "/v1/{a/{b}}",
            "unexpected '/' in variable, expected '=' or '}'",
            6,
        ),
        ("/v1/{a=x/{b}}", "variables cannot nest", 9),
        ("/v1/{a}/{a}", "field path \"a\" is bound twice", 8),
        ("/v1/{a.b}/{a.b=*}", "field path \"a.b\" is bound twice", 10),
        ("v1/x", "must start with '/'", 0),
        ("", "must start with '/'", 0),
        ("/v1/x/", "empty segment (trailing '/')", 6),
        ("/v1//x", "empty segment", 4),
        ("//", "empty segment", 1),
        ("/v1/{}", "empty variable", 5),
        ("/v1/{a.}", "expected a field name after '.', found '}'", 7),
        ("/v1/{1a}", "expected a field name, found '1'", 5),
        ("/v1/{a=}", "empty segment", 7),
        ("/v1/{a=b", "unclosed '{'", 4),
        ("/v1/{a=b/", "unclosed '{'", 4),
        ("/v1/a}", "unmatched '}'", 5),
        ("/v1/a{b}", "unexpected '{' in segment", 5),
        ("/v1/a*", "unexpected '*' in segment", 5),
        ("/v1/*a", "'*' and '**' must be whole segments", 4),
        ("/v1/***", "'*' and '**' must be whole segments", 4),
        ("/v1/a b", "unexpected ' ' in segment", 5),
        ("/v1/é", "unexpected 'é' in segment", 4),
        ("/v1/a%2", "invalid percent-encoding", 5),
        ("/v1/a%zz", "invalid percent-encoding", 5),
        ("/v1/a%FF", "not valid UTF-8 after percent-decoding", 4),
        ("/v1/x:", "empty verb", 6),
        ("/v1/x:a:b", "unexpected ':' after the verb", 7),
        ("/v1/{x}:a:", "empty verb", 10),
        ("/v1/a:b/c", "unexpected '/' after the verb", 7),
        ("/v1/{a=x:y}", "unexpected ':' in variable", 8),
        ("/:x", "empty segment", 1),
        ("/v1/x?y", "unexpected '?' in segment", 5),
    ];
    for (text, reason, position) in cases {
        let err = PathTemplate::parse(text).expect_err(text);
        assert_eq!(err.reason, reason, "{text}");
        assert_eq!(err.position, position, "{text}");
        assert_eq!(err.template, text);
    }
}

#[test]
fn error_message_quotes_template_and_position() {
    let err = PathTemplate::parse("/v1/{id").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid path template "/v1/{id": unclosed '{' at byte 4"#
    );
}

#[test]
fn shape_key_ignores_variable_names_but_not_verbs() {
    let a = PathTemplate::parse("/v1/users/{id}").unwrap();
    let b = PathTemplate::parse("/v1/users/{user_id}").unwrap();
    let c = PathTemplate::parse("/v1/users/*").unwrap();
    let d = PathTemplate::parse("/v1/users/{id}:watch").unwrap();
    assert_eq!(a.shape_key(), "/v1/users/*");
    assert_eq!(a.shape_key(), b.shape_key());
    assert_eq!(a.shape_key(), c.shape_key());
    assert!(a.same_shape(&b) && a.same_shape(&c));
    assert_ne!(a.shape_key(), d.shape_key());
    assert!(!a.same_shape(&d));
    assert_eq!(d.shape_key(), "/v1/users/*:watch");
    let multi = PathTemplate::parse("/v1/{a=x/*}/{b=**}").unwrap();
    assert_eq!(multi.shape_key(), "/v1/x/*/**");
    // A literal `*` (escaped) cannot be confused with the wildcard.
    let star = PathTemplate::parse("/v1/%2A").unwrap();
    assert_eq!(star.shape_key(), "/v1/%2A");
    assert_eq!(PathTemplate::parse("/").unwrap().shape_key(), "/");
}

#[test]
fn decodes_strictly() {
    assert!(matches!(
        percent_decode("abc", false),
        Ok(Cow::Borrowed("abc"))
    ));
    assert_eq!(percent_decode("a%20b+c", false).unwrap(), "a b+c");
    assert_eq!(percent_decode("a%2Fb%2fc", false).unwrap(), "a/b/c");
    assert_eq!(percent_decode("a%2Fb%2fc%41", true).unwrap(), "a%2Fb%2FcA");
    assert_eq!(percent_decode("%C3%A9", false).unwrap(), "é");
    assert_eq!(percent_decode("%", false), Err(DecodeError::BadEscape(0)));
    assert_eq!(
        percent_decode("x%G1", false),
        Err(DecodeError::BadEscape(1))
    );
    assert_eq!(percent_decode("x%4", false), Err(DecodeError::BadEscape(1)));
    assert_eq!(percent_decode("%FF", false), Err(DecodeError::NotUtf8));
    assert_eq!(percent_decode("%C3", true), Err(DecodeError::NotUtf8));
}
