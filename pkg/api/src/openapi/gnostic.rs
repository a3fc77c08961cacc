//! The Swagger 2.0 document in protobuf, as kubectl asks for it with
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`: gnostic's
//! `openapi.v2.Document` message. kubectl 1.27 and 1.28 validate `apply` and `create -f`
//! only against this form.
//!
//! The messages below are the subset of gnostic's `openapiv2/OpenAPIv2.proto` that the
//! document uses, written from its field numbers. Vendor extensions (`x-kubernetes-…`) are
//! `NamedAny`s whose `yaml` holds the value as JSON text, which YAML readers accept.

use prost::{Message, Oneof};
use serde_json::{Map, Value};

/// `openapi.v2.Document`.
#[derive(Clone, PartialEq, Message)]
pub struct Document {
    /// The Swagger version, `2.0`.
    #[prost(string, tag = "1")]
    pub swagger: String,
    /// Title and version.
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    /// The paths.
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    /// The schema definitions.
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
    /// Security requirements of every operation.
    #[prost(message, repeated, tag = "12")]
    pub security: Vec<SecurityRequirement>,
    /// The security schemes.
    #[prost(message, optional, tag = "13")]
    pub security_definitions: Option<SecurityDefinitions>,
}

/// `openapi.v2.Info`.
#[derive(Clone, PartialEq, Message)]
pub struct Info {
    /// The title.
    #[prost(string, tag = "1")]
    pub title: String,
    /// The version.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `openapi.v2.Paths`.
#[derive(Clone, PartialEq, Message)]
pub struct Paths {
    /// The paths by name.
    #[prost(message, repeated, tag = "2")]
    pub path: Vec<NamedPathItem>,
}

/// `openapi.v2.NamedPathItem`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedPathItem {
    /// The path.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its operations.
    #[prost(message, optional, tag = "2")]
    pub value: Option<PathItem>,
}

/// `openapi.v2.PathItem`.
#[derive(Clone, PartialEq, Message)]
pub struct PathItem {
    /// GET.
    #[prost(message, optional, tag = "2")]
    pub get: Option<Operation>,
    /// PUT.
    #[prost(message, optional, tag = "3")]
    pub put: Option<Operation>,
    /// POST.
    #[prost(message, optional, tag = "4")]
    pub post: Option<Operation>,
    /// DELETE.
    #[prost(message, optional, tag = "5")]
    pub delete: Option<Operation>,
    /// PATCH.
    #[prost(message, optional, tag = "8")]
    pub patch: Option<Operation>,
    /// Parameters of every operation.
    #[prost(message, repeated, tag = "9")]
    pub parameters: Vec<ParametersItem>,
}

/// `openapi.v2.Operation`.
#[derive(Clone, PartialEq, Message)]
pub struct Operation {
    /// Tags.
    #[prost(string, repeated, tag = "1")]
    pub tags: Vec<String>,
    /// What it does.
    #[prost(string, tag = "3")]
    pub description: String,
    /// Its id.
    #[prost(string, tag = "5")]
    pub operation_id: String,
    /// Response media types.
    #[prost(string, repeated, tag = "6")]
    pub produces: Vec<String>,
    /// Request media types.
    #[prost(string, repeated, tag = "7")]
    pub consumes: Vec<String>,
    /// Parameters.
    #[prost(message, repeated, tag = "8")]
    pub parameters: Vec<ParametersItem>,
    /// Responses.
    #[prost(message, optional, tag = "9")]
    pub responses: Option<Responses>,
    /// Schemes.
    #[prost(string, repeated, tag = "10")]
    pub schemes: Vec<String>,
    /// `x-kubernetes-action`, `x-kubernetes-group-version-kind`.
    #[prost(message, repeated, tag = "13")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.ParametersItem` (only the `parameter` case).
#[derive(Clone, PartialEq, Message)]
pub struct ParametersItem {
    /// The parameter.
    #[prost(oneof = "ParametersItemOneof", tags = "1")]
    pub oneof: Option<ParametersItemOneof>,
}

/// The cases of `ParametersItem`.
#[derive(Clone, PartialEq, Oneof)]
pub enum ParametersItemOneof {
    /// A parameter.
    #[prost(message, tag = "1")]
    Parameter(Parameter),
}

/// `openapi.v2.Parameter`.
#[derive(Clone, PartialEq, Message)]
pub struct Parameter {
    /// A body or a non-body parameter.
    #[prost(oneof = "ParameterOneof", tags = "1, 2")]
    pub oneof: Option<ParameterOneof>,
}

/// The cases of `Parameter`.
#[derive(Clone, PartialEq, Oneof)]
pub enum ParameterOneof {
    /// The body.
    #[prost(message, boxed, tag = "1")]
    BodyParameter(Box<BodyParameter>),
    /// A path or query parameter.
    #[prost(message, tag = "2")]
    NonBodyParameter(NonBodyParameter),
}

/// `openapi.v2.BodyParameter`.
#[derive(Clone, PartialEq, Message)]
pub struct BodyParameter {
    /// What it holds.
    #[prost(string, tag = "1")]
    pub description: String,
    /// Its name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// `body`.
    #[prost(string, tag = "3")]
    pub r#in: String,
    /// Whether it must be sent.
    #[prost(bool, tag = "4")]
    pub required: bool,
    /// Its schema.
    #[prost(message, optional, tag = "5")]
    pub schema: Option<Schema>,
}

/// `openapi.v2.NonBodyParameter` (query and path cases).
#[derive(Clone, PartialEq, Message)]
pub struct NonBodyParameter {
    /// The parameter.
    #[prost(oneof = "NonBodyParameterOneof", tags = "3, 4")]
    pub oneof: Option<NonBodyParameterOneof>,
}

/// The cases of `NonBodyParameter`.
#[derive(Clone, PartialEq, Oneof)]
pub enum NonBodyParameterOneof {
    /// A query parameter.
    #[prost(message, tag = "3")]
    QueryParameterSubSchema(QueryParameterSubSchema),
    /// A path parameter.
    #[prost(message, tag = "4")]
    PathParameterSubSchema(PathParameterSubSchema),
}

/// `openapi.v2.QueryParameterSubSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct QueryParameterSubSchema {
    /// Whether it must be sent.
    #[prost(bool, tag = "1")]
    pub required: bool,
    /// `query`.
    #[prost(string, tag = "2")]
    pub r#in: String,
    /// What it does.
    #[prost(string, tag = "3")]
    pub description: String,
    /// Its name.
    #[prost(string, tag = "4")]
    pub name: String,
    /// Its type.
    #[prost(string, tag = "6")]
    pub r#type: String,
    /// `uniqueItems`.
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
}

/// `openapi.v2.PathParameterSubSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct PathParameterSubSchema {
    /// Always true.
    #[prost(bool, tag = "1")]
    pub required: bool,
    /// `path`.
    #[prost(string, tag = "2")]
    pub r#in: String,
    /// What it names.
    #[prost(string, tag = "3")]
    pub description: String,
    /// Its name.
    #[prost(string, tag = "4")]
    pub name: String,
    /// Its type.
    #[prost(string, tag = "5")]
    pub r#type: String,
    /// `uniqueItems`.
    #[prost(bool, tag = "19")]
    pub unique_items: bool,
}

/// `openapi.v2.Responses`.
#[derive(Clone, PartialEq, Message)]
pub struct Responses {
    /// The responses by status code.
    #[prost(message, repeated, tag = "1")]
    pub response_code: Vec<NamedResponseValue>,
}

/// `openapi.v2.NamedResponseValue`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedResponseValue {
    /// The status code.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The response.
    #[prost(message, optional, tag = "2")]
    pub value: Option<ResponseValue>,
}

/// `openapi.v2.ResponseValue` (only the `response` case).
#[derive(Clone, PartialEq, Message)]
pub struct ResponseValue {
    /// The response.
    #[prost(oneof = "ResponseValueOneof", tags = "1")]
    pub oneof: Option<ResponseValueOneof>,
}

/// The cases of `ResponseValue`.
#[derive(Clone, PartialEq, Oneof)]
pub enum ResponseValueOneof {
    /// A response.
    #[prost(message, tag = "1")]
    Response(Response),
}

/// `openapi.v2.Response`.
#[derive(Clone, PartialEq, Message)]
pub struct Response {
    /// What it means.
    #[prost(string, tag = "1")]
    pub description: String,
    /// What it returns.
    #[prost(message, optional, tag = "2")]
    pub schema: Option<SchemaItem>,
}

/// `openapi.v2.SchemaItem` (only the `schema` case).
#[derive(Clone, PartialEq, Message)]
pub struct SchemaItem {
    /// The schema.
    #[prost(oneof = "SchemaItemOneof", tags = "1")]
    pub oneof: Option<SchemaItemOneof>,
}

/// The cases of `SchemaItem`.
#[derive(Clone, PartialEq, Oneof)]
pub enum SchemaItemOneof {
    /// A schema.
    #[prost(message, tag = "1")]
    Schema(Schema),
}

/// `openapi.v2.Definitions`.
#[derive(Clone, PartialEq, Message)]
pub struct Definitions {
    /// The schemas by name.
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.NamedSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedSchema {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The schema.
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

/// `openapi.v2.Schema` (the keywords the Kubernetes schemas use).
#[derive(Clone, PartialEq, Message)]
pub struct Schema {
    /// `$ref`.
    #[prost(string, tag = "1")]
    pub r#ref: String,
    /// `format`.
    #[prost(string, tag = "2")]
    pub format: String,
    /// `title`.
    #[prost(string, tag = "3")]
    pub title: String,
    /// `description`.
    #[prost(string, tag = "4")]
    pub description: String,
    /// `required`.
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    /// `enum`.
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    /// `additionalProperties`.
    #[prost(message, optional, boxed, tag = "21")]
    pub additional_properties: Option<Box<AdditionalPropertiesItem>>,
    /// `type`.
    #[prost(message, optional, tag = "22")]
    pub r#type: Option<TypeItem>,
    /// `items`.
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    /// `allOf`.
    #[prost(message, repeated, tag = "24")]
    pub all_of: Vec<Schema>,
    /// `properties`.
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    /// `readOnly`.
    #[prost(bool, tag = "27")]
    pub read_only: bool,
    /// `x-…` keywords.
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.AdditionalPropertiesItem`.
#[derive(Clone, PartialEq, Message)]
pub struct AdditionalPropertiesItem {
    /// A schema or a boolean.
    #[prost(oneof = "AdditionalPropertiesOneof", tags = "1, 2")]
    pub oneof: Option<AdditionalPropertiesOneof>,
}

/// The cases of `AdditionalPropertiesItem`.
#[derive(Clone, PartialEq, Oneof)]
pub enum AdditionalPropertiesOneof {
    /// The schema of every value.
    #[prost(message, boxed, tag = "1")]
    Schema(Box<Schema>),
    /// Whether other properties are allowed.
    #[prost(bool, tag = "2")]
    Boolean(bool),
}

/// `openapi.v2.TypeItem`.
#[derive(Clone, PartialEq, Message)]
pub struct TypeItem {
    /// The types.
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

/// `openapi.v2.ItemsItem`.
#[derive(Clone, PartialEq, Message)]
pub struct ItemsItem {
    /// The item schema (one).
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

/// `openapi.v2.Properties`.
#[derive(Clone, PartialEq, Message)]
pub struct Properties {
    /// The properties by name.
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.NamedAny`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedAny {
    /// The key.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

/// `openapi.v2.Any` (only the `yaml` form).
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    /// The value as YAML (here: JSON text).
    #[prost(string, tag = "2")]
    pub yaml: String,
}

/// `openapi.v2.SecurityDefinitions`.
#[derive(Clone, PartialEq, Message)]
pub struct SecurityDefinitions {
    /// The schemes by name.
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSecurityDefinitionsItem>,
}

/// `openapi.v2.NamedSecurityDefinitionsItem`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedSecurityDefinitionsItem {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The scheme.
    #[prost(message, optional, tag = "2")]
    pub value: Option<SecurityDefinitionsItem>,
}

/// `openapi.v2.SecurityDefinitionsItem` (only the API key case).
#[derive(Clone, PartialEq, Message)]
pub struct SecurityDefinitionsItem {
    /// The scheme.
    #[prost(oneof = "SecurityDefinitionsOneof", tags = "2")]
    pub oneof: Option<SecurityDefinitionsOneof>,
}

/// The cases of `SecurityDefinitionsItem`.
#[derive(Clone, PartialEq, Oneof)]
pub enum SecurityDefinitionsOneof {
    /// An API key in a header.
    #[prost(message, tag = "2")]
    ApiKeySecurity(ApiKeySecurity),
}

/// `openapi.v2.ApiKeySecurity`.
#[derive(Clone, PartialEq, Message)]
pub struct ApiKeySecurity {
    /// `apiKey`.
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// The header name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// `header`.
    #[prost(string, tag = "3")]
    pub r#in: String,
    /// What it is.
    #[prost(string, tag = "4")]
    pub description: String,
}

/// `openapi.v2.SecurityRequirement`.
#[derive(Clone, PartialEq, Message)]
pub struct SecurityRequirement {
    /// The schemes required, by name.
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedStringArray>,
}

/// `openapi.v2.NamedStringArray`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedStringArray {
    /// The scheme name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its scopes.
    #[prost(message, optional, tag = "2")]
    pub value: Option<StringArray>,
}

/// `openapi.v2.StringArray`.
#[derive(Clone, PartialEq, Message)]
pub struct StringArray {
    /// The strings.
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

/// Encodes a Swagger 2.0 JSON document as a gnostic `Document`.
pub fn encode(doc: &Value) -> Vec<u8> {
    document(doc).encode_to_vec()
}

/// Decodes a gnostic `Document`.
pub fn decode(bytes: &[u8]) -> Result<Document, prost::DecodeError> {
    Document::decode(bytes)
}

fn document(doc: &Value) -> Document {
    Document {
        swagger: text(doc, "swagger"),
        info: Some(Info {
            title: text(&doc["info"], "title"),
            version: text(&doc["info"], "version"),
        }),
        paths: Some(Paths {
            path: entries(&doc["paths"])
                .map(|(name, item)| NamedPathItem {
                    name: name.clone(),
                    value: Some(path_item(item)),
                })
                .collect(),
        }),
        definitions: Some(Definitions {
            additional_properties: named_schemas(&doc["definitions"]),
        }),
        security: doc["security"]
            .as_array()
            .into_iter()
            .flatten()
            .map(security_requirement)
            .collect(),
        security_definitions: Some(SecurityDefinitions {
            additional_properties: entries(&doc["securityDefinitions"])
                .map(|(name, s)| NamedSecurityDefinitionsItem {
                    name: name.clone(),
                    value: Some(SecurityDefinitionsItem {
                        oneof: Some(SecurityDefinitionsOneof::ApiKeySecurity(ApiKeySecurity {
                            r#type: text(s, "type"),
                            name: text(s, "name"),
                            r#in: text(s, "in"),
                            description: text(s, "description"),
                        })),
                    }),
                })
                .collect(),
        }),
    }
}

fn security_requirement(requirement: &Value) -> SecurityRequirement {
    SecurityRequirement {
        additional_properties: entries(requirement)
            .map(|(name, scopes)| NamedStringArray {
                name: name.clone(),
                value: Some(StringArray {
                    value: strings(scopes),
                }),
            })
            .collect(),
    }
}

fn path_item(item: &Value) -> PathItem {
    let op = |key: &str| item.get(key).map(operation);
    PathItem {
        get: op("get"),
        put: op("put"),
        post: op("post"),
        delete: op("delete"),
        patch: op("patch"),
        parameters: parameters(&item["parameters"]),
    }
}

fn operation(op: &Value) -> Operation {
    Operation {
        tags: strings(&op["tags"]),
        description: text(op, "description"),
        operation_id: text(op, "operationId"),
        produces: strings(&op["produces"]),
        consumes: strings(&op["consumes"]),
        parameters: parameters(&op["parameters"]),
        responses: Some(Responses {
            response_code: entries(&op["responses"])
                .map(|(code, r)| NamedResponseValue {
                    name: code.clone(),
                    value: Some(ResponseValue {
                        oneof: Some(ResponseValueOneof::Response(Response {
                            description: text(r, "description"),
                            schema: r.get("schema").map(|s| SchemaItem {
                                oneof: Some(SchemaItemOneof::Schema(schema(s))),
                            }),
                        })),
                    }),
                })
                .collect(),
        }),
        schemes: strings(&op["schemes"]),
        vendor_extension: extensions(op),
    }
}

fn parameters(list: &Value) -> Vec<ParametersItem> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|p| ParametersItem {
            oneof: Some(ParametersItemOneof::Parameter(parameter(p))),
        })
        .collect()
}

fn parameter(p: &Value) -> Parameter {
    let required = p["required"].as_bool().unwrap_or(false);
    let unique_items = p["uniqueItems"].as_bool().unwrap_or(false);
    let oneof = match p["in"].as_str() {
        Some("body") => ParameterOneof::BodyParameter(Box::new(BodyParameter {
            description: text(p, "description"),
            name: text(p, "name"),
            r#in: "body".into(),
            required,
            schema: p.get("schema").map(schema),
        })),
        Some("path") => ParameterOneof::NonBodyParameter(NonBodyParameter {
            oneof: Some(NonBodyParameterOneof::PathParameterSubSchema(
                PathParameterSubSchema {
                    required,
                    r#in: "path".into(),
                    description: text(p, "description"),
                    name: text(p, "name"),
                    r#type: text(p, "type"),
                    unique_items,
                },
            )),
        }),
        _ => ParameterOneof::NonBodyParameter(NonBodyParameter {
            oneof: Some(NonBodyParameterOneof::QueryParameterSubSchema(
                QueryParameterSubSchema {
                    required,
                    r#in: "query".into(),
                    description: text(p, "description"),
                    name: text(p, "name"),
                    r#type: text(p, "type"),
                    unique_items,
                },
            )),
        }),
    };
    Parameter { oneof: Some(oneof) }
}

fn named_schemas(map: &Value) -> Vec<NamedSchema> {
    entries(map)
        .map(|(name, s)| NamedSchema {
            name: name.clone(),
            value: Some(schema(s)),
        })
        .collect()
}

/// One JSON schema as a gnostic `Schema`.
fn schema(s: &Value) -> Schema {
    let additional_properties = match s.get("additionalProperties") {
        Some(Value::Bool(b)) => Some(AdditionalPropertiesOneof::Boolean(*b)),
        Some(inner @ Value::Object(_)) => {
            Some(AdditionalPropertiesOneof::Schema(Box::new(schema(inner))))
        }
        _ => None,
    };
    let types = match &s["type"] {
        Value::String(t) => vec![t.clone()],
        other => strings(other),
    };
    Schema {
        r#ref: text(s, "$ref"),
        format: text(s, "format"),
        title: text(s, "title"),
        description: text(s, "description"),
        required: strings(&s["required"]),
        r#enum: s["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .map(any)
            .collect(),
        additional_properties: additional_properties
            .map(|oneof| Box::new(AdditionalPropertiesItem { oneof: Some(oneof) })),
        r#type: (!types.is_empty()).then_some(TypeItem { value: types }),
        items: s.get("items").map(|i| ItemsItem {
            schema: vec![schema(i)],
        }),
        all_of: s["allOf"]
            .as_array()
            .into_iter()
            .flatten()
            .map(schema)
            .collect(),
        properties: s.get("properties").map(|p| Properties {
            additional_properties: named_schemas(p),
        }),
        read_only: s["readOnly"].as_bool().unwrap_or(false),
        vendor_extension: extensions(s),
    }
}

/// The `x-…` keys of an object as `NamedAny`s.
fn extensions(object: &Value) -> Vec<NamedAny> {
    entries(object)
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| NamedAny {
            name: k.clone(),
            value: Some(any(v)),
        })
        .collect()
}

fn any(value: &Value) -> Any {
    Any {
        yaml: value.to_string(),
    }
}

fn entries(value: &Value) -> impl Iterator<Item = (&String, &Value)> {
    value.as_object().into_iter().flat_map(Map::iter)
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_string()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}
