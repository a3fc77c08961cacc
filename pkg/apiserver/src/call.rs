//! One authorized request for a resource, with what every verb's handler needs: the resource,
//! the caller, the query, the body, and how to answer in the representation asked for.

use bytes::Bytes;
use cairn_api::Resource;
use http::{HeaderMap, Response, StatusCode};
use serde_json::Value;

use crate::ApiServer;
use crate::authn::User;
use crate::error::{ApiError, ApiResult};
use crate::negotiate::{self, BodyType, Representation};
use crate::request::{Query, ResourceRequest};
use crate::response::{self, Body};
use crate::table;

/// A request for a resource, past authentication and authorization.
pub struct Call<'a> {
    /// The server.
    pub api: &'a ApiServer,
    /// The caller.
    pub user: User,
    /// What the path addresses.
    pub req: ResourceRequest,
    /// The resource.
    pub resource: &'static Resource,
    /// The query parameters.
    pub query: Query,
    /// The request headers.
    pub headers: HeaderMap,
    /// The request body.
    pub body: Bytes,
}

impl Call<'_> {
    /// The object's name from the path.
    pub fn name(&self) -> ApiResult<&str> {
        self.req
            .name
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("a name is required"))
    }

    /// The namespace from the path.
    pub fn namespace(&self) -> Option<&str> {
        self.req.namespace.as_deref()
    }

    /// The object the path names, or NotFound.
    pub async fn current(&self) -> ApiResult<Value> {
        crate::read::current(self).await
    }

    /// Whether the request is a dry run (`dryRun=All`).
    pub fn dry_run(&self) -> ApiResult<bool> {
        match self.query.all("dryRun") {
            [] => Ok(false),
            values if values.iter().all(|v| v == "All") => Ok(true),
            values => Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {:?}: supported values: \"All\"",
                values
                    .iter()
                    .find(|v| *v != "All")
                    .cloned()
                    .unwrap_or_default()
            ))),
        }
    }

    /// The body's type.
    pub fn body_type(&self) -> ApiResult<BodyType> {
        negotiate::body_type(&self.headers)
    }

    /// The body as a JSON value (JSON, YAML or protobuf).
    pub fn body_value(&self) -> ApiResult<Value> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        match self.body_type()? {
            BodyType::Yaml | BodyType::ApplyPatch => negotiate::parse_document(&self.body, true),
            BodyType::Protobuf => crate::protobuf::decode(&self.body),
            _ => negotiate::parse_document(&self.body, false),
        }
    }

    /// A Table of `objects` in `version`, or the error that prevented it.
    fn table(
        &self,
        status: StatusCode,
        version: &str,
        objects: &[Value],
        meta: Option<&Value>,
    ) -> Response<Body> {
        let include = table::include_object(&self.query);
        match table::of_resource(self.resource, version, objects, meta, include) {
            Ok(t) => response::json_typed(status, &table::content_type(version), &t),
            Err(e) => response::error(&e),
        }
    }

    /// Answers with one object, as a Table when asked.
    pub fn respond_object(&self, status: StatusCode, obj: &Value) -> Response<Body> {
        match negotiate::representation(&self.headers) {
            Representation::Table(version) if self.resource.is_stored() => {
                self.table(status, version, std::slice::from_ref(obj), None)
            }
            _ => response::json(status, obj),
        }
    }

    /// Answers with a list, as a Table when asked.
    pub fn respond_list(&self, list: &Value) -> Response<Body> {
        match negotiate::representation(&self.headers) {
            Representation::Table(version) => {
                let items = list["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                self.table(StatusCode::OK, version, items, Some(&list["metadata"]))
            }
            Representation::Object => response::json(StatusCode::OK, list),
        }
    }
}
