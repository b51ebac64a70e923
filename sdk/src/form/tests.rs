use super::*;
use serde::Deserialize;
use serde_json::json;

fn p(s: &str) -> Value {
    parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn err(s: &str) -> FormError {
    parse(s).expect_err(s)
}

#[test]
fn decoding() {
    assert_eq!(decode_component("a+b%20c%2Bd"), "a b c+d");
    assert_eq!(percent_decode("a+b%20c"), "a+b c");
    assert!(matches!(decode_component("plain"), Cow::Borrowed("plain")));
    // Invalid escapes stay as they are, invalid UTF-8 is replaced.
    assert_eq!(decode_component("100%"), "100%");
    assert_eq!(decode_component("%zz%4"), "%zz%4");
    assert_eq!(decode_component("%FF"), "\u{FFFD}");
    assert_eq!(decode_component("caf%C3%A9"), "café");
}

#[test]
fn pairs_keep_order_and_skip_empty_pieces() {
    let got: Vec<_> = pairs("b=2&&a=1&a=3&flag")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let want = [("b", "2"), ("a", "1"), ("a", "3"), ("flag", "")];
    assert_eq!(got, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
}

#[test]
fn flat_and_nested_objects() {
    assert_eq!(p(""), json!({}));
    assert_eq!(
        p("name=Jenny+Rosen&email=j%40x.com"),
        json!({"name": "Jenny Rosen", "email": "j@x.com"})
    );
    assert_eq!(
        p("metadata[color]=red&metadata[size]=L&a[b][c]=d"),
        json!({"metadata": {"color": "red", "size": "L"}, "a": {"b": {"c": "d"}}})
    );
}

#[test]
fn arrays_by_push_and_by_index() {
    assert_eq!(
        p("expand[]=a&expand[]=b&expand[]=a"),
        json!({"expand": ["a", "b", "a"]})
    );
    assert_eq!(
        p("items[0][price]=p&items[0][quantity]=2&items[1][price]=q"),
        json!({"items": [{"price": "p", "quantity": "2"}, {"price": "q"}]})
    );
    // Indices order the array and gaps close up.
    assert_eq!(p("a[5]=z&a[1]=y&a[0]=x"), json!({"a": ["x", "y", "z"]}));
    // `[]` with object children fills the last element until a key repeats.
    assert_eq!(
        p("l[][p]=1&l[][q]=2&l[][p]=3"),
        json!({"l": [{"p": "1", "q": "2"}, {"p": "3"}]})
    );
    assert_eq!(
        p("m[][a][b]=1&m[][a][c]=2"),
        json!({"m": [{"a": {"b": "1", "c": "2"}}]})
    );
}

#[test]
fn get_query_strings_arrive_with_encoded_brackets() {
    assert_eq!(
        p("expand%5B%5D=customer&metadata%5Bk%5D=v%20w"),
        json!({"expand": ["customer"], "metadata": {"k": "v w"}})
    );
}

#[test]
fn empty_value_means_unset_and_is_kept() {
    assert_eq!(
        p("description=&metadata[color]=&flag"),
        json!({"description": "", "metadata": {"color": ""}, "flag": ""})
    );
}

#[test]
fn repeated_plain_key_keeps_the_last_value() {
    assert_eq!(p("a=1&a=2"), json!({"a": "2"}));
}

#[test]
fn numeric_key_under_a_hash_is_a_key() {
    assert_eq!(p("m[a]=1&m[0]=2"), json!({"m": {"a": "1", "0": "2"}}));
}

#[test]
fn malformed_input_is_rejected_with_the_key() {
    for bad in [
        "a[b=1",
        "a]=1",
        "a[b]c=1",
        "a[b[c]]=1",
        "=1",
        "[a]=1",
        "a[b]]=1",
    ] {
        let e = err(bad);
        assert!(e.key.is_some(), "{bad}");
    }
    let e = err("a=1&a[b]=2");
    assert_eq!(e.key.as_deref(), Some("a[b]"));
    assert!(e.message.contains("`a`"), "{}", e.message);
    err("a[b]=2&a=1");
    err("a[0]=1&a[b]=2");
    err("a[]=1&a[b]=2");
    err("a[b]=1&a[]=2");
    err(&format!("a{}=1", "[x]".repeat(MAX_DEPTH + 1)));
    let as_error: Error = err("a[=1").into();
    assert_eq!(
        (as_error.status, as_error.param.as_deref()),
        (400, Some("a["))
    );
}

#[test]
fn from_value_parses_scalars_and_unset_options() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Line {
        price: String,
        quantity: u32,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Live,
        Test,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    struct Params {
        amount: i64,
        capture: bool,
        rate: f64,
        description: Option<String>,
        coupon: Option<String>,
        mode: Mode,
        items: Vec<Line>,
        metadata: BTreeMap<String, String>,
        #[serde(default)]
        expand: Vec<String>,
    }
    let got: Params = from_str(
        "amount=100&capture=true&rate=0.5&description=&coupon=X&mode=test\
         &items[0][price]=p&items[0][quantity]=3&metadata[k]=v",
    )
    .unwrap();
    assert_eq!(
        got,
        Params {
            amount: 100,
            capture: true,
            rate: 0.5,
            description: None,
            coupon: Some("X".into()),
            mode: Mode::Test,
            items: vec![Line {
                price: "p".into(),
                quantity: 3
            }],
            metadata: [("k".to_owned(), "v".to_owned())].into(),
            expand: vec![],
        }
    );
    let _ = Mode::Live;
    let bad = from_str::<Params>("amount=ten").unwrap_err();
    assert_eq!(bad.status, 400);
    assert!(bad.message.contains("ten"), "{}", bad.message);
}
