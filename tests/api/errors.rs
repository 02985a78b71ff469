//! Every error class answers problem+json with its status and code.

use serde_json::json;

use crate::helpers::{TestApp, problem, small_spec};

#[tokio::test]
async fn routing_errors() {
    let app = TestApp::spawn().await;
    problem(
        app.client.get(app.url("/nope")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    problem(
        app.client
            .put(app.url("/v1/workloads"))
            .send()
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    problem(
        app.client
            .get(app.url("/v1/workloads/doesnotexist"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    // An id that spells a POST-only sibling route reaches that route: 405, and the OpenAPI document says
    // so on the templated routes (schemathesis found this one).
    for path in ["/v1/workloads/sample", "/v1/datasets/convert"] {
        problem(
            app.client.get(app.url(path)).send().await.unwrap(),
            405,
            "method_not_allowed",
        )
        .await;
    }
    let doc = workload_generator::http::openapi::spec_json();
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    for (path, method) in [
        ("/v1/workloads/{id}", "get"),
        ("/v1/workloads/{id}", "delete"),
        ("/v1/datasets/{id}", "get"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"]["405"].is_object(),
            "{method} {path} documents 405"
        );
    }
    assert!(doc["paths"]["/v1/workloads/{id}/events"]["get"]["responses"]["405"].is_null());
    problem(
        app.client
            .get(app.url("/v1/workloads?limit=abc"))
            .send()
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    // A client-supplied request id is kept.
    let res = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "my-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "my-id-1");
    assert_eq!(
        problem(res, 404, "not_found").await["request_id"],
        "my-id-1"
    );
}

#[tokio::test]
async fn spec_errors_name_the_field() {
    let app = TestApp::spawn_with(|c| c.max_spec_bytes = 2000).await;
    let post = |body: String, ct: &'static str| {
        app.client
            .post(app.url("/v1/workloads"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    problem(
        post("{not json".into(), "application/json").await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
    problem(
        post("{}".into(), "text/plain").await.unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    let v = problem(
        post(
            json!({"trace_type": "constant", "traffic": {"qps": 1}}).to_string(),
            "application/json",
        )
        .await
        .unwrap(),
        422,
        "invalid_json",
    )
    .await;
    assert_eq!(v["field"], "traffic.qps");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `qps`"),
        "{v}"
    );
    let v = problem(
        post(
            json!({"trace_type": "constant", "traffic": {"target_qps": "fast"}}).to_string(),
            "application/json",
        )
        .await
        .unwrap(),
        422,
        "invalid_json",
    )
    .await;
    assert_eq!(v["field"], "traffic.target_qps");
    let v = problem(
        app.submit(json!({"trace_type": "constant", "traffic": {"target_qps": -1}}))
            .await,
        422,
        "invalid_spec",
    )
    .await;
    assert_eq!(v["detail"], "traffic.target_qps must be > 0");
    let v = problem(
        app.submit(json!({"trace_type": "constant", "prompt_file": "/etc/passwd"}))
            .await,
        422,
        "invalid_spec",
    )
    .await;
    assert_eq!(v["field"], "prompt_file");
    let v = problem(
        app.submit(json!({"trace_type": "constant", "dataset": "../../x"}))
            .await,
        422,
        "invalid_spec",
    )
    .await;
    assert_eq!(v["field"], "dataset");
    let v = problem(
        app.submit(json!({"trace_type": "constant", "tokenizer": "/etc/tokenizer.json"}))
            .await,
        422,
        "invalid_spec",
    )
    .await;
    assert_eq!(v["field"], "tokenizer");
    let big = json!({"trace_type": "constant", "dataset": "x".repeat(3000)}).to_string();
    problem(
        post(big, "application/json").await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn a_failed_job_carries_a_problem_and_no_files() {
    let app = TestApp::spawn().await;
    // A Grafana traffic export whose rate cell is not a number: the job fails naming file, row and column.
    let csv = "\"Time\",\"Total\",\"Success\",\"4xx Error\"\n2024-01-01 00:00:00,5,5,0\n2024-01-01 00:00:10,5,fast,0\n";
    let res = app
        .client
        .post(app.url("/v1/traces?format=csv&name=traffic.csv"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let spec = json!({"trace_type": "stat", "seed": 1, "stat": {"traffic_file": id}});
    let res = app
        .client
        .post(app.url("/v1/workloads?wait=true"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "invalid_input");
    assert_eq!(v["error"]["title"], "Invalid input file");
    assert_eq!(v["error"]["status"], 422);
    let detail = v["error"]["detail"].as_str().unwrap();
    assert!(
        detail.contains(":3") && detail.contains("Success"),
        "{detail}"
    );
    assert!(v["files"].as_array().unwrap().is_empty());
    // A spec naming a trace that was never uploaded is refused before queueing.
    let spec = json!({"trace_type": "stat", "stat": {"traffic_file": "0".repeat(64)}});
    let v = problem(app.submit(spec).await, 422, "invalid_spec").await;
    assert_eq!(v["field"], "stat.traffic_file");
}

#[tokio::test]
async fn a_body_is_one_json_value() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/v1/workloads"))
        .header("content-type", "application/json")
        .body(r#"{"trace_type": "constant"} {"x": 1}"#)
        .send()
        .await
        .unwrap();
    let v = problem(res, 400, "invalid_json").await;
    assert!(
        v["detail"].as_str().unwrap().contains("trailing data"),
        "{v}"
    );
    // Trailing whitespace is fine.
    let res = app
        .client
        .post(app.url("/v1/workloads"))
        .header("content-type", "application/json")
        .body("{\"trace_type\": \"constant\", \"duration_ms\": 1000}\n  \n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn with_a_token_every_v1_answer_is_401_first() {
    let app = TestApp::spawn_with(|c| c.auth_token = Some("s3cret".into())).await;
    // Unknown routes and wrong methods under /v1 do not reveal themselves without the token.
    for (method, path) in [
        (reqwest::Method::GET, "/v1/nope"),
        (reqwest::Method::PUT, "/v1/workloads"),
        (reqwest::Method::GET, "/v1"),
    ] {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        problem(res, 401, "unauthorized").await;
        // With the token they are what they are.
        let res = app
            .client
            .request(method, app.url(path))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert!(matches!(res.status().as_u16(), 404 | 405), "{path}");
    }
    // Outside /v1, 404 stays 404.
    let res = app.client.get(app.url("/nope")).send().await.unwrap();
    problem(res, 404, "not_found").await;
}

#[tokio::test]
async fn paging_follows_next_and_an_unknown_cursor_is_400() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let v: serde_json::Value = app
            .submit(crate::helpers::small_spec())
            .await
            .json()
            .await
            .unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let first = app.get_json("/v1/workloads?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().expect("a next cursor").to_string();
    let second = app
        .get_json(&format!("/v1/workloads?limit=2&after={next}"))
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next"].is_null(), "{second}");
    let mut seen: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    // A cursor that names no job does not silently restart at page 1.
    let res = app
        .client
        .get(app.url("/v1/workloads?after=0123456789abcdef0123456789abcdef"))
        .send()
        .await
        .unwrap();
    let v = problem(res, 400, "bad_request").await;
    assert_eq!(v["field"], "after");
}

#[tokio::test]
async fn a_storage_failure_is_a_500_internal_without_the_path_not_a_bad_spec() {
    let app = TestApp::spawn().await;
    // The job directory cannot be created: its parent is now a file.
    let jobs = app.dir.path().join("workloads");
    std::fs::remove_dir_all(&jobs).unwrap();
    std::fs::write(&jobs, "not a directory").unwrap();
    let res = app.submit(small_spec()).await;
    let p = problem(res, 500, "internal").await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        !detail.contains(app.dir.path().to_str().unwrap()),
        "no server path in {detail}"
    );
}

#[tokio::test]
async fn a_spec_over_the_limits_is_refused_with_the_field_and_the_estimate() {
    let app = TestApp::spawn().await;
    // The issue's repro: 10^5 qps for 10^7 ms is 10^9 requests.
    let spec = json!({"trace_type": "constant", "duration_ms": 10_000_000u64, "traffic": {"target_qps": 1e5}});
    let p = problem(app.submit(spec).await, 422, "limit_exceeded").await;
    assert_eq!(p["field"], "traffic.target_qps");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("1000000000 requests"), "{detail}");
    let spec = json!({"trace_type": "constant", "length_policy": "exact",
        "lengths": {"target_prompt_len": 4294967295u64}});
    let p = problem(app.submit(spec).await, 422, "limit_exceeded").await;
    assert_eq!(p["field"], "lengths.target_prompt_len");
    // Burstiness where gamma gaps underflow: a spec error, before any estimate.
    let spec = json!({"trace_type": "constant", "duration_ms": 1000,
        "traffic": {"target_qps": 1, "arrival": "gamma", "burstiness": 1e-300}});
    let p = problem(app.submit(spec).await, 422, "invalid_spec").await;
    assert_eq!(p["field"], "traffic.burstiness");
}

#[tokio::test]
async fn a_job_that_crosses_its_budget_stops_with_limit_exceeded_and_no_files() {
    let app = TestApp::spawn_with(|c| c.limits.max_job_output_bytes = 20_000).await;
    // The estimate cannot know the sample prompts' sizes; the budget stops the job while it writes.
    let spec = json!({"trace_type": "constant", "seed": 1, "duration_ms": 600_000, "traffic": {"target_qps": 5}});
    let res = app
        .client
        .post(app.url("/v1/workloads?wait=true"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "limit_exceeded");
    assert_eq!(v["error"]["status"], 422);
    assert!(
        v["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("max_job_output_bytes"),
        "{v}"
    );
    assert!(v["files"].as_array().unwrap().is_empty(), "{v}");
    let id = v["id"].as_str().unwrap();
    let dir = app.dir.path().join("workloads").join(id);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "job.json")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The schema of a spec property, with `$ref` resolved and a `oneOf [null, X]` reduced to X.
fn spec_property_schemas(
    doc: &serde_json::Value,
    schema: &str,
) -> Vec<(String, bool, serde_json::Value)> {
    let resolve = |v: &serde_json::Value| -> serde_json::Value {
        match v["$ref"].as_str() {
            Some(r) => doc["components"]["schemas"][r.rsplit('/').next().unwrap()].clone(),
            None => v.clone(),
        }
    };
    let mut out = vec![];
    for (name, prop) in doc["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap()
    {
        let (nullable, inner) = match prop["oneOf"].as_array() {
            Some(alts) => {
                let null = alts.iter().any(|a| a["type"] == "null");
                let other = alts.iter().find(|a| a["type"] != "null").unwrap();
                (null, resolve(other))
            }
            None => {
                let types = prop["type"].as_array().cloned().unwrap_or_default();
                (types.iter().any(|t| t == "null"), prop.clone())
            }
        };
        out.push((name.clone(), nullable, inner));
    }
    out
}

/// The OpenAPI document says exactly what a spec accepts: every property it marks nullable takes `null`
/// (meaning absent: 202), and every property it types as an object refuses an array (422 naming it).
#[tokio::test]
async fn the_spec_schema_is_what_the_service_accepts() {
    let app = TestApp::spawn_with(|c| c.queue_capacity = 1000).await;
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("openapi/openapi.json").unwrap()).unwrap();
    let submit = |body: serde_json::Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/workloads"))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let base = || json!({"trace_type": "constant", "duration_ms": 1000});
    let mut checked = 0;
    for (name, nullable, inner) in spec_property_schemas(&doc, "GenerationSpecDoc") {
        if name == "trace_type" || name == "duration_ms" {
            continue;
        }
        if nullable {
            let mut body = base();
            body[&name] = serde_json::Value::Null;
            let res = submit(body).await;
            assert_eq!(
                res.status(),
                202,
                "{name}: null: {}",
                res.text().await.unwrap()
            );
            checked += 1;
        }
        let is_object = inner["type"] == "object"
            || inner["type"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "object"));
        if is_object {
            let mut body = base();
            body[&name] = json!([1]);
            let res = submit(body).await;
            assert_eq!(res.status(), 422, "{name}: [1]");
            let v: serde_json::Value = res.json().await.unwrap();
            assert!(
                v["code"] == "invalid_json" || v["code"] == "invalid_spec",
                "{v}"
            );
            assert_eq!(v["field"], name.as_str(), "{v}");
            checked += 1;
            // The nested properties of a documented section take null too.
            if let Some(props) = inner["properties"].as_object() {
                for sub in props.keys() {
                    let mut body = base();
                    body[&name] = json!({ sub.as_str(): null });
                    let res = submit(body).await;
                    assert_eq!(
                        res.status(),
                        202,
                        "{name}.{sub}: null: {}",
                        res.text().await.unwrap()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked > 25,
        "only {checked} cases: did the schema change shape?"
    );
    // The document itself must be an object, and nulls are absent, not values.
    problem(submit(json!(["constant"])).await, 422, "invalid_json").await;
}

/// Statuses that come from layers below the handlers (decompression, URI and header limits) carry the
/// envelope too.
#[tokio::test]
async fn layer_errors_are_problems_too() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/v1/workloads"))
        .header("content-type", "application/json")
        .header("content-encoding", "x-unknown")
        .body(r#"{"trace_type": "constant"}"#)
        .send()
        .await
        .unwrap();
    let v = problem(res, 415, "unsupported_media_type").await;
    assert!(
        v["detail"].as_str().unwrap().contains("Content-Encoding"),
        "{v}"
    );

    let long = format!("/v1/workloads?after={}", "a".repeat(10_000));
    let res = app.client.get(app.url(&long)).send().await.unwrap();
    problem(res, 414, "uri_too_long").await;

    let mut req = app.client.get(app.url("/v1/workloads"));
    for i in 0..40 {
        req = req.header(format!("x-filler-{i}"), "v".repeat(1000));
    }
    problem(req.send().await.unwrap(), 431, "headers_too_large").await;

    // /readyz's own body is kept (it is not an error of the envelope's kind).
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
