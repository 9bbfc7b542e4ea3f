//! The GraphiQL page served to browsers at the endpoint, loading GraphiQL from a CDN.
//!
//! Queries and mutations go over HTTP POST to the same path; subscriptions over a WebSocket
//! to the same path with the `graphql-transport-ws` protocol (the `graphql-ws` client
//! library). Nothing is fetched at build or test time: the browser loads the scripts.

use axum::body::Body;
use axum::response::Response;
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

/// Pinned CDN versions (GraphiQL 3 is the last line with a UMD build using React 18).
const REACT: &str = "https://unpkg.com/react@18.3.1/umd/react.production.min.js";
const REACT_DOM: &str = "https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js";
const GRAPHIQL_JS: &str = "https://unpkg.com/graphiql@3.9.0/graphiql.min.js";
const GRAPHIQL_CSS: &str = "https://unpkg.com/graphiql@3.9.0/graphiql.min.css";
const GRAPHQL_WS: &str = "https://unpkg.com/graphql-ws@5.16.0/umd/graphql-ws.min.js";

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
    <script crossorigin src="{REACT}"></script>
    <script crossorigin src="{REACT_DOM}"></script>
    <script crossorigin src="{GRAPHQL_WS}"></script>
    <script crossorigin src="{GRAPHIQL_JS}"></script>
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
mod tests {
    use super::*;

    #[test]
    fn page_points_at_the_endpoint_over_http_and_websocket() {
        let html = page("/graphql");
        assert!(html.contains(r#"new URL("/graphql", window.location.href)"#));
        assert!(html.contains("graphqlWs.createClient"));
        assert!(html.contains("wsClient"));
        assert!(html.contains("graphiql@3.9.0/graphiql.min.js"));
    }

    #[test]
    fn path_cannot_break_out_of_the_script() {
        let html = page("/x</script><script>alert(1)</script>");
        assert!(!html.contains("</script><script>alert"));
    }
}
