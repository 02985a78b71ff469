//! Shared by the test binaries that check SVG output (`#[path]`-included).

use quick_xml::events::Event;

/// Parses `svg` with an XML parser; returns every attribute value of `attr` and all text content.
pub(crate) fn parse_svg(svg: &str, attr: &str) -> (Vec<String>, Vec<String>) {
    let mut reader = quick_xml::Reader::from_str(svg);
    let (mut attrs, mut texts) = (Vec::new(), Vec::new());
    let mut depth = 0i32;
    let mut root = None;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) => {
                depth += 1;
                if root.is_none() {
                    root = Some(String::from_utf8(e.name().as_ref().to_vec()).unwrap());
                }
                for a in e.attributes() {
                    let a = a.expect("well-formed attribute");
                    if a.key.as_ref() == attr.as_bytes() {
                        attrs.push(a.unescape_value().unwrap().into_owned());
                    }
                }
            }
            Ok(Event::Empty(e)) => {
                for a in e.attributes() {
                    let a = a.expect("well-formed attribute");
                    if a.key.as_ref() == attr.as_bytes() {
                        attrs.push(a.unescape_value().unwrap().into_owned());
                    }
                }
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Text(t)) => {
                let t = t.unescape().expect("well-formed text").into_owned();
                if !t.trim().is_empty() {
                    texts.push(t);
                }
            }
            Ok(_) => {}
            Err(e) => panic!("not well-formed XML at {}: {e}", reader.buffer_position()),
        }
    }
    assert_eq!(depth, 0, "unbalanced elements");
    assert_eq!(root.as_deref(), Some("svg"));
    (attrs, texts)
}
