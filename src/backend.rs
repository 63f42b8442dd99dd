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

/// Kernel dispatches wgpu records before each queue submit. A training step of `nano` launches
/// 1,855 kernels: cubecl's default of 32 submits 58 times a step, 512 four times, which trained
/// `nano` 1.1–1.3× faster on lavapipe (README: "Kernel launches and submits").
pub const TASKS_MAX: usize = 512;

impl Backend {
    /// The device for this backend (without autodiff; the trainer adds it).
    #[cfg(not(target_family = "wasm"))]
    pub fn device(self) -> Result<Device, String> {
        self.device_with(None)
    }

    /// The device, with wgpu's kernel dispatches per queue submit set (`llmplay bench
    /// --tasks-max` measures them; [`TASKS_MAX`] by default).
    #[cfg(not(target_family = "wasm"))]
    pub fn device_with(self, tasks_max: Option<usize>) -> Result<Device, String> {
        match self {
            Backend::Cpu => Ok(Device::flex()),
            Backend::Wgpu => Device::wgpu_options()
                .tasks_max(tasks_max.unwrap_or(TASKS_MAX))
                .init()
                .map_err(|e| format!("no usable GPU through wgpu ({e}); use --backend cpu")),
        }
    }

    /// The device in a browser: WebGPU must be initialised asynchronously. The WebGPU device is
    /// watched for loss (a driver reset, the GPU unplugged, the tab backgrounded too long).
    #[cfg(target_family = "wasm")]
    pub async fn device(self, tasks_max: Option<usize>) -> Result<Device, String> {
        match self {
            Backend::Cpu => Ok(Device::flex()),
            Backend::Wgpu => {
                let (device, setup) = Device::wgpu_options()
                    .tasks_max(tasks_max.unwrap_or(TASKS_MAX))
                    .init_with_setup_async()
                    .await
                    .map_err(|e| format!("WebGPU did not start ({e})"))?;
                web_gpu::watch(setup.device);
                Ok(device)
            }
        }
    }
}

/// The browser's WebGPU device, kept to learn when it is lost. After a loss burn's read-backs
/// fail with an error value, and the engine reports the reason so the page can restart it.
#[cfg(target_family = "wasm")]
pub mod web_gpu {
    use std::cell::RefCell;
    use std::sync::Mutex;

    use burn::tensor::wgpu::wgpu;

    // The callback must be Send, so the reason goes through a static, not a captured JS value.
    static LOST: Mutex<Option<String>> = Mutex::new(None);
    thread_local! {
        static DEVICE: RefCell<Option<wgpu::Device>> = const { RefCell::new(None) };
    }

    pub(crate) fn watch(device: wgpu::Device) {
        // wgpu on the web adds this beside cubecl's own callback (natively it would replace it).
        device.set_device_lost_callback(|reason, message| {
            let why = match reason {
                wgpu::DeviceLostReason::Destroyed => "destroyed".to_string(),
                _ => if message.is_empty() { "no reason given".to_string() } else { message },
            };
            *LOST.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        });
        DEVICE.with(|d| *d.borrow_mut() = Some(device));
    }

    /// Why the WebGPU device was lost, once it has been.
    pub fn lost() -> Option<String> {
        LOST.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Destroys the device, as a driver reset would lose it: the browser tests use this.
    pub fn destroy() -> bool {
        DEVICE.with(|d| d.borrow().as_ref().map(|device| device.destroy()).is_some())
    }
}
