//! Descriptions the page shows: the adapter hearth opened and the model it loaded, as JSON.

use hearth::generate::Session;
use hearth::gpu::Gpu;
use hearth::model::Model;
use serde_json::json;

pub fn adapter(gpu: &Gpu) -> String {
    let l = &gpu.limits;
    json!({
        "name": gpu.info.name,
        "cpuAdapter": gpu.is_cpu_adapter(),
        "f16": gpu.paths.f16,
        "subgroups": gpu.paths.subgroups,
        "subgroupSizes": [gpu.info.subgroup_min_size, gpu.info.subgroup_max_size],
        "paths": gpu.paths.describe(),
        "decodeShape": format!("{:?}", gpu.decode_shape()),
        "limits": {
            "maxStorageBufferBindingSize": l.max_storage_buffer_binding_size,
            "maxBufferSize": l.max_buffer_size,
            "maxTextureDimension2D": l.max_texture_dimension_2d,
            "maxTextureArrayLayers": l.max_texture_array_layers,
            "maxComputeWorkgroupStorageSize": l.max_compute_workgroup_storage_size,
            "maxComputeInvocationsPerWorkgroup": l.max_compute_invocations_per_workgroup,
        },
    })
    .to_string()
}

/// `heap_bytes`: the wasm heap's size, which after a load is its peak.
pub fn model(model: &Model, file_name: &str, file_bytes: u64, session: &Session, heap_bytes: u64) -> String {
    let c = &model.config;
    json!({
        "file": file_name,
        "fileBytes": file_bytes,
        "name": c.name,
        "architecture": c.arch,
        "parameters": c.n_params(),
        "layers": c.n_layer,
        "vocabulary": c.n_vocab,
        "contextTrained": c.n_ctx_train,
        "context": session.options().ctx,
        "chatTemplate": model.chat_template.is_some(),
        "weightBytes": model.weight_bytes,
        "sessionBytes": session.gpu_bytes(),
        "heapBytes": heap_bytes,
    })
    .to_string()
}
