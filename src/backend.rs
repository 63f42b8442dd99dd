//! The one place that picks where tensors live: burn's pure-Rust CPU backend (`flex`) or the GPU
//! through wgpu (Vulkan, Metal, DX12 natively; WebGPU in the browser).

use burn::tensor::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Wgpu,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "wgpu" | "gpu" => Ok(Self::Wgpu),
            other => Err(format!("unknown backend '{other}': use 'cpu' or 'wgpu'")),
        }
    }
}

impl Backend {
    /// The device for this backend (without autodiff; the trainer adds it).
    #[cfg(not(target_family = "wasm"))]
    pub fn device(self) -> Result<Device, String> {
        match self {
            Backend::Cpu => Ok(Device::flex()),
            Backend::Wgpu => Device::wgpu_options()
                .init()
                .map_err(|e| format!("no usable GPU through wgpu ({e}); use --backend cpu")),
        }
    }

    /// The device in a browser: WebGPU must be initialised asynchronously.
    #[cfg(target_family = "wasm")]
    pub async fn device(self) -> Result<Device, String> {
        match self {
            Backend::Cpu => Ok(Device::flex()),
            Backend::Wgpu => Device::wgpu_options()
                .init_async()
                .await
                .map_err(|e| format!("WebGPU did not start ({e})")),
        }
    }
}
