//! The GraphiQL page served to browsers at the endpoint, and the files it loads, embedded in
//! the binary (`gateway/assets/graphiql/`, from the npm packages, with their licenses) and
//! served at `/graphiql/<file>`: it works without internet access.
//!
//! Queries and mutations go over HTTP POST to the same path; subscriptions over a WebSocket
//! to the same path with the `graphql-transport-ws` protocol (the `graphql-ws` client
//! library).

use axum::body::Body;
use axum::response::Response;
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

/// Where the page loads its files from (GraphiQL 3.9.0, React 18.3.1, graphql-ws 5.16.0:
/// GraphiQL 3 is the last line with a UMD build using React 18).
const REACT: &str = "/graphiql/react.production.min.js";
const REACT_DOM: &str = "/graphiql/react-dom.production.min.js";
const GRAPHIQL_JS: &str = "/graphiql/graphiql.min.js";
const GRAPHIQL_CSS: &str = "/graphiql/graphiql.min.css";
const GRAPHQL_WS: &str = "/graphiql/graphql-ws.min.js";

/// The embedded files, by name.
const ASSETS: [(&str, &[u8], &str); 5] = [
    (
        "graphiql.min.js",
        include_bytes!("../../../assets/graphiql/graphiql.min.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "graphiql.min.css",
        include_bytes!("../../../assets/graphiql/graphiql.min.css"),
        "text/css; charset=utf-8",
    ),
    (
        "react.production.min.js",
        include_bytes!("../../../assets/graphiql/react.production.min.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "react-dom.production.min.js",
        include_bytes!("../../../assets/graphiql/react-dom.production.min.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "graphql-ws.min.js",
        include_bytes!("../../../assets/graphiql/graphql-ws.min.js"),
        "text/javascript; charset=utf-8",
    ),
];

/// One of the page's files (`/graphiql/<name>`): its bytes and content type.
pub fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, bytes, ty)| (*bytes, *ty))
}

/// The HTML of the page for an endpoint at `path`.
pub(crate) fn page(path: &str) -> String {
    // A JSON string literal is a JS string literal; `<` escaped so it cannot close the script.
    let endpoint = serde_json::to_string(path)
        .unwrap_or_else(|_| "\"/graphql\"".to_owned())
        .replace('<', "\\u003c");
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Portico GraphiQL</title>
    <style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
    <link rel="stylesheet" href="{GRAPHIQL_CSS}">
    <script src="{REACT}"></script>
    <script src="{REACT_DOM}"></script>
    <script src="{GRAPHQL_WS}"></script>
    <script src="{GRAPHIQL_JS}"></script>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL...</div>
    <script>
      const endpoint = new URL({endpoint}, window.location.href);
      const wsEndpoint = new URL(endpoint);
      wsEndpoint.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
      // graphql-ws speaks the graphql-transport-ws subprotocol.
      const wsClient = graphqlWs.createClient({{ url: wsEndpoint.toString(), lazy: true }});
      const fetcher = GraphiQL.createFetcher({{ url: endpoint.toString(), wsClient }});
      ReactDOM.createRoot(document.getElementById("graphiql")).render(
        React.createElement(GraphiQL, {{ fetcher, defaultEditorToolsVisibility: true }})
      );
    </script>
  </body>
</html>
"#
    )
}

/// The page as a response.
pub(crate) fn respond(path: &str) -> Response {
    let mut response = Response::new(Body::from(page(path)));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn page_points_at_the_endpoint_over_http_and_websocket() {
        let html = page("/graphql");
        assert!(html.contains(r#"new URL("/graphql", window.location.href)"#));
        assert!(html.contains("graphqlWs.createClient"));
        assert!(html.contains("wsClient"));
        assert!(html.contains(r#"src="/graphiql/graphiql.min.js""#));
        assert!(!html.contains("https://"), "nothing from elsewhere");
    }

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        let html = page("/graphql");
        for name in [
            "graphiql.min.js",
            "graphiql.min.css",
            "react.production.min.js",
            "react-dom.production.min.js",
            "graphql-ws.min.js",
        ] {
            assert!(html.contains(&format!("/graphiql/{name}")), "{name}");
            let (bytes, _) = asset(name).unwrap_or_else(|| panic!("{name} is not embedded"));
            assert!(bytes.len() > 1000, "{name}");
        }
        assert!(asset("../secret").is_none());
    }

    #[test]
    fn path_cannot_break_out_of_the_script() {
        let html = page("/x</script><script>alert(1)</script>");
        assert!(!html.contains("</script><script>alert"));
    }
}
