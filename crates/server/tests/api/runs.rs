//! `GET /runs/{run_id}`: a company sees its own runs; another company's and
//! unknown ones are the same 404.

use reqwest::StatusCode;

use crate::helpers::*;

backend_test!(
    async fn a_run_is_visible_to_its_company_and_the_admin_only(app) {
        let acme_key = app.company_with_demo_rules("acme").await;
        let globex_key = app.company_with_demo_rules("globex").await;
        let response = app.post_payment(&book_payment("acme"), Some(&acme_key)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let run_id = json_body(response).await["run_id"].as_str().unwrap().to_owned();

        let run = app.wait_for_run(&run_id, &acme_key).await;
        assert_eq!(run["company_id"], "acme");
        let as_admin = json_body(app.get_run(&run_id, Some(&app.admin_token)).await).await;
        assert_eq!(as_admin["run_id"], run_id.as_str());

        let other = assert_problem(app.get_run(&run_id, Some(&globex_key)).await, StatusCode::NOT_FOUND).await;
        let unknown_id = "run_0000000000000000000000000000000a";
        let unknown = assert_problem(app.get_run(unknown_id, Some(&globex_key)).await, StatusCode::NOT_FOUND).await;
        assert_eq!(
            other["detail"].as_str().unwrap().replace(&run_id, "X"),
            unknown["detail"].as_str().unwrap().replace(unknown_id, "X"),
            "another company's run looks missing"
        );
        assert_problem(app.get_run(unknown_id, Some(&app.admin_token)).await, StatusCode::NOT_FOUND).await;
        assert_problem(app.get_run("not a/valid id", Some(&app.admin_token)).await, StatusCode::NOT_FOUND).await;
        assert_problem(app.get_run(&run_id, None).await, StatusCode::UNAUTHORIZED).await;
    }
);
