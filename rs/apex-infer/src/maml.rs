//! The MAML return model's online adaptation, in Rust: at every closed bar, the inner-loop SGD steps `apexctl train
//! maml` meta-trained for run on the latest labelled bars, from the meta-learned weights, and the adapted network
//! predicts the current bar.
//!
//! The network is the bundle's MLP (`nets.MLP`: optional standardization, `Linear` + tanh/relu layers, a linear
//! head with outputs `sign_logit` and `size`). Its weights are read from the bundle's ONNX file (its initializers,
//! named as the PyTorch parameters), so the ONNX graph stays the one source of the weights; [`MamlModel::check`]
//! runs the Rust forward pass against ONNX Runtime on sample rows. The loss and the SGD step are those of
//! `apexctl/forge/maml.py` (`loss_of`, `adapt`): binary cross-entropy of the sign logit plus `size_weight` times the
//! Huber loss (delta 1) of the size, means over the support rows, every parameter adapted with learning rate
//! `inner_lr`. Targets are built as `maml_data.build_tasks` builds them: `r = ln(close[t+h] / close[t])`, sign label
//! 1 / 0 / 0.5 for r > 0 / < 0 / = 0, size `|r| / size_scale`.

use std::collections::VecDeque;
use std::path::Path;

use prost::Message;
use serde_json::Value;

use crate::{InferError, ModelEntry};

/// The parts of ONNX's protobuf messages the weights live in (field numbers from onnx.proto; the rest is skipped).
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, tag = "4")]
        pub op_type: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }
}

/// An initializer's dims and values.
type Initializer = (Vec<i64>, Vec<f64>);

/// ONNX's element type number of float32.
const FLOAT: i32 = 1;

/// The hidden layers' nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Tanh,
    Relu,
}

/// One `Linear` layer: `weight` is `[outputs][inputs]` row-major, as PyTorch stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f64>,
    pub bias: Vec<f64>,
}

/// An MLP's parameters (the adapted ones) and its fixed standardization.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    pub layers: Vec<Dense>,
    pub activation: Activation,
    /// (mean, std) of the input standardization, when the network has one.
    pub norm: Option<(Vec<f64>, Vec<f64>)>,
}

/// The inner loop's settings (from the bundle entry's `info.metrics`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InnerLoop {
    pub steps: usize,
    pub lr: f64,
    pub size_weight: f64,
}

fn model_error(model: &str, message: impl Into<String>) -> InferError {
    InferError::Model { model: model.to_owned(), message: message.into() }
}

impl Mlp {
    /// The MLP of an ONNX file exported from `nets.MLP` with `hidden` layer widths (initializers `body.{2k}.weight`,
    /// `body.{2k}.bias`, and `norm.mean`/`norm.std` when standardized).
    ///
    /// # Errors
    /// `Io` for an unreadable file; `Model` for a file that is not such an MLP (missing or misshapen initializers,
    /// operators other than the MLP's).
    pub fn from_onnx(path: &Path, name: &str, layers: usize, activation: Activation) -> Result<Mlp, InferError> {
        let bytes = std::fs::read(path).map_err(|source| InferError::Io { path: path.to_owned(), source })?;
        let model = proto::ModelProto::decode(bytes.as_slice())
            .map_err(|e| model_error(name, format!("{}: not an ONNX model: {e}", path.display())))?;
        let graph = model.graph.ok_or_else(|| model_error(name, "the ONNX model has no graph"))?;
        let allowed = ["Sub", "Div", "Gemm", "Tanh", "Relu", "Identity"];
        if let Some(node) = graph.node.iter().find(|n| !allowed.contains(&n.op_type.as_str())) {
            return Err(model_error(name, format!("operator {} is not part of an MLP", node.op_type)));
        }
        let tensor = |wanted: &str| -> Result<Option<Initializer>, InferError> {
            let Some(t) = graph.initializer.iter().find(|t| t.name == wanted) else { return Ok(None) };
            if t.data_type != FLOAT {
                return Err(model_error(name, format!("initializer {wanted} is not float32")));
            }
            let values: Vec<f64> = if t.raw_data.is_empty() {
                t.float_data.iter().map(|&v| f64::from(v)).collect()
            } else {
                t.raw_data.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect()
            };
            let expected: i64 = t.dims.iter().product();
            if i64::try_from(values.len()).ok() != Some(expected) {
                return Err(model_error(
                    name,
                    format!("initializer {wanted} has {} values for dims {:?}", values.len(), t.dims),
                ));
            }
            Ok(Some((t.dims.clone(), values)))
        };
        let mut dense = Vec::new();
        for k in 0..layers {
            let (wn, bn) = (format!("body.{}.weight", 2 * k), format!("body.{}.bias", 2 * k));
            let (dims, weight) = tensor(&wn)?.ok_or_else(|| model_error(name, format!("no initializer {wn}")))?;
            let (bdims, bias) = tensor(&bn)?.ok_or_else(|| model_error(name, format!("no initializer {bn}")))?;
            let (outputs, inputs) = match dims.as_slice() {
                [o, i] => (usize::try_from(*o).unwrap_or(0), usize::try_from(*i).unwrap_or(0)),
                _ => return Err(model_error(name, format!("{wn} has dims {dims:?}, expected 2"))),
            };
            if bdims.as_slice() != [dims[0]] {
                return Err(model_error(name, format!("{bn} has dims {bdims:?}, expected [{outputs}]")));
            }
            if let Some(previous) = dense.last().map(|d: &Dense| d.outputs)
                && previous != inputs
            {
                return Err(model_error(name, format!("{wn} takes {inputs} inputs after a layer of {previous}")));
            }
            dense.push(Dense { inputs, outputs, weight, bias });
        }
        let norm = match (tensor("norm.mean")?, tensor("norm.std")?) {
            (Some((_, mean)), Some((_, std))) => Some((mean, std)),
            (None, None) => None,
            _ => return Err(model_error(name, "norm.mean and norm.std come together")),
        };
        let mlp = Mlp { layers: dense, activation, norm };
        if let Some((mean, _)) = &mlp.norm
            && mean.len() != mlp.inputs()
        {
            return Err(model_error(name, format!("norm.mean has {} values for {} inputs", mean.len(), mlp.inputs())));
        }
        Ok(mlp)
    }

    /// Width of the input row.
    #[must_use]
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |d| d.inputs)
    }

    /// Width of the output.
    #[must_use]
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |d| d.outputs)
    }

    fn standardized(&self, row: &[f64]) -> Vec<f64> {
        match &self.norm {
            Some((mean, std)) => row.iter().zip(mean).zip(std).map(|((x, m), s)| (x - m) / s).collect(),
            None => row.to_vec(),
        }
    }

    fn activate(&self, z: f64) -> f64 {
        match self.activation {
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.max(0.0),
        }
    }

    /// Activations of every layer for one row: `acts[0]` the (standardized) input, `acts[k]` the output of layer
    /// `k` (after its nonlinearity, the last one linear).
    fn forward_all(&self, row: &[f64]) -> Vec<Vec<f64>> {
        let mut acts = vec![self.standardized(row)];
        let last = self.layers.len() - 1;
        for (k, layer) in self.layers.iter().enumerate() {
            let input = &acts[k];
            let out: Vec<f64> = (0..layer.outputs)
                .map(|o| {
                    let w = &layer.weight[o * layer.inputs..(o + 1) * layer.inputs];
                    let z = layer.bias[o] + w.iter().zip(input).map(|(a, b)| a * b).sum::<f64>();
                    if k == last { z } else { self.activate(z) }
                })
                .collect();
            acts.push(out);
        }
        acts
    }

    /// The network's output for one row.
    #[must_use]
    pub fn forward(&self, row: &[f64]) -> Vec<f64> {
        self.forward_all(row).pop().unwrap_or_default()
    }

    /// The MAML loss over `rows` (one `[sign label, size]` target each) and its gradient, one `Dense` per layer.
    #[must_use]
    pub fn loss_and_gradient(&self, rows: &[Vec<f64>], targets: &[[f64; 2]], size_weight: f64) -> (f64, Vec<Dense>) {
        let mut grads: Vec<Dense> = self
            .layers
            .iter()
            .map(|d| Dense {
                inputs: d.inputs,
                outputs: d.outputs,
                weight: vec![0.0; d.weight.len()],
                bias: vec![0.0; d.outputs],
            })
            .collect();
        let n = rows.len() as f64;
        let mut loss = 0.0;
        for (row, target) in rows.iter().zip(targets) {
            let acts = self.forward_all(row);
            let out = &acts[acts.len() - 1];
            let (logit, size) = (out[0], out[1]);
            // BCE with logits, in the stable form PyTorch uses; Huber with delta 1.
            loss += logit.max(0.0) - logit * target[0] + (-logit.abs()).exp().ln_1p();
            let d = size - target[1];
            loss += size_weight * if d.abs() < 1.0 { 0.5 * d * d } else { d.abs() - 0.5 };
            let mut delta = vec![0.0; out.len()];
            delta[0] = (1.0 / (1.0 + (-logit).exp()) - target[0]) / n;
            delta[1] = size_weight * d.clamp(-1.0, 1.0) / n;
            for k in (0..self.layers.len()).rev() {
                let layer = &self.layers[k];
                let input = &acts[k];
                let grad = &mut grads[k];
                for (o, &dz) in delta.iter().enumerate() {
                    grad.bias[o] += dz;
                    for (i, &a) in input.iter().enumerate() {
                        grad.weight[o * layer.inputs + i] += dz * a;
                    }
                }
                if k == 0 {
                    break;
                }
                let below = &acts[k];
                delta = (0..layer.inputs)
                    .map(|i| {
                        let back: f64 = (0..layer.outputs).map(|o| delta[o] * layer.weight[o * layer.inputs + i]).sum();
                        back * match self.activation {
                            Activation::Tanh => 1.0 - below[i] * below[i],
                            Activation::Relu => f64::from(u8::from(below[i] > 0.0)),
                        }
                    })
                    .collect();
            }
        }
        (loss / n, grads)
    }

    /// `inner.steps` plain SGD steps on `rows` from these parameters (`maml.adapt`).
    #[must_use]
    pub fn adapt(&self, rows: &[Vec<f64>], targets: &[[f64; 2]], inner: &InnerLoop) -> Mlp {
        let mut params = self.clone();
        if rows.is_empty() {
            return params;
        }
        for _ in 0..inner.steps {
            let (_, grads) = params.loss_and_gradient(rows, targets, inner.size_weight);
            for (layer, grad) in params.layers.iter_mut().zip(&grads) {
                for (w, g) in layer.weight.iter_mut().zip(&grad.weight) {
                    *w -= inner.lr * g;
                }
                for (b, g) in layer.bias.iter_mut().zip(&grad.bias) {
                    *b -= inner.lr * g;
                }
            }
        }
        params
    }
}

/// A number from a JSON object, by key.
fn number(object: &serde_json::Map<String, Value>, key: &str) -> Option<f64> {
    object.get(key).and_then(Value::as_f64)
}

/// The MAML model of a bundle with its online adaptation: the meta-learned MLP, the inner loop, and the bars it
/// adapts on.
#[derive(Debug, Clone)]
pub struct MamlModel {
    base: Mlp,
    inner: InnerLoop,
    horizon: usize,
    support_rows: usize,
    size_scale: f64,
    /// The latest bars: (input row, close), enough for `support_rows` labelled rows plus the horizon.
    history: VecDeque<(Vec<f64>, f64)>,
}

impl MamlModel {
    /// The MAML model of bundle entry `entry` whose ONNX file is in `dir`.
    ///
    /// # Errors
    /// `Model` for an entry that is not an adaptable MLP (`info.arch` other than "mlp", a head without the
    /// `sign_logit, size` outputs, missing inner-loop settings), or an ONNX file that does not hold its weights.
    pub fn from_entry(dir: &Path, entry: &ModelEntry) -> Result<MamlModel, InferError> {
        let name = entry.name.as_str();
        let info = &entry.info;
        if info.get("arch").and_then(Value::as_str) != Some("mlp") {
            return Err(model_error(name, "online adaptation is implemented for info.arch = \"mlp\" only"));
        }
        let config =
            info.get("config").and_then(Value::as_object).ok_or_else(|| model_error(name, "no info.config"))?;
        let hidden = config.get("hidden").and_then(Value::as_array).map_or(0, Vec::len);
        let activation = match config.get("activation").and_then(Value::as_str).unwrap_or("tanh") {
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            other => return Err(model_error(name, format!("activation {other:?} is not tanh or relu"))),
        };
        let metrics =
            info.get("metrics").and_then(Value::as_object).ok_or_else(|| model_error(name, "no info.metrics"))?;
        let need = |key: &str| number(metrics, key).ok_or_else(|| model_error(name, format!("no info.metrics.{key}")));
        let inner = InnerLoop {
            steps: need("inner_steps")? as usize,
            lr: need("inner_lr")?,
            // Bundles exported before these were recorded used the trainer's defaults.
            size_weight: number(metrics, "size_weight").unwrap_or(1.0),
        };
        let horizon = number(metrics, "horizon").unwrap_or(5.0) as usize;
        let support_rows = number(metrics, "support_rows").unwrap_or(30.0) as usize;
        let size_scale = need("size_scale")?;
        if !(size_scale.is_finite() && size_scale > 0.0 && inner.lr.is_finite() && horizon >= 1 && support_rows >= 1) {
            return Err(model_error(name, "inner-loop settings out of range"));
        }
        let base = Mlp::from_onnx(&dir.join(&entry.file), name, hidden + 1, activation)?;
        if base.inputs() != entry.features.len() || base.outputs() != 2 {
            return Err(model_error(
                name,
                format!(
                    "the MLP maps {} inputs to {} outputs; the entry lists {} features and needs 2 outputs",
                    base.inputs(),
                    base.outputs(),
                    entry.features.len()
                ),
            ));
        }
        let meanings: Vec<&str> =
            entry.outputs.first().map(|o| o.meaning.iter().map(String::as_str).collect()).unwrap_or_default();
        if !meanings.is_empty() && meanings != ["sign_logit", "size"] {
            return Err(model_error(name, format!("outputs {meanings:?} are not [sign_logit, size]")));
        }
        Ok(MamlModel { base, inner, horizon, support_rows, size_scale, history: VecDeque::new() })
    }

    /// The meta-learned network.
    #[must_use]
    pub fn base(&self) -> &Mlp {
        &self.base
    }

    #[must_use]
    pub fn inner_loop(&self) -> InnerLoop {
        self.inner
    }

    /// A bar closed with input `row` (the entry's features, in order) and `close`: adapts on the latest labelled
    /// bars and returns the adapted network's `[sign_logit, size]` for this row, or `None` when the row has a
    /// missing value.
    pub fn push(&mut self, row: &[f64], close: f64) -> Option<[f64; 2]> {
        self.history.push_back((row.to_vec(), close));
        let keep = self.support_rows + self.horizon + 1;
        while self.history.len() > keep {
            self.history.pop_front();
        }
        if row.len() != self.base.inputs() || row.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let (rows, targets) = self.support();
        let adapted = self.base.adapt(&rows, &targets, &self.inner);
        let out = adapted.forward(row);
        Some([out[0], out[1]])
    }

    /// The labelled support rows: each bar whose close `horizon` bars later is known, newest `support_rows`, rows
    /// with a missing input or target skipped.
    fn support(&self) -> (Vec<Vec<f64>>, Vec<[f64; 2]>) {
        let n = self.history.len();
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        for t in 0..n.saturating_sub(self.horizon) {
            let (row, close) = &self.history[t];
            let later = self.history[t + self.horizon].1;
            let r = (later / close).ln();
            if !r.is_finite() || row.iter().any(|v| !v.is_finite()) {
                continue;
            }
            let sign = if r > 0.0 {
                1.0
            } else if r < 0.0 {
                0.0
            } else {
                0.5
            };
            rows.push(row.clone());
            targets.push([sign, r.abs() / self.size_scale]);
        }
        let skip = rows.len().saturating_sub(self.support_rows);
        (rows.split_off(skip), targets.split_off(skip))
    }

    /// Forgets the bars seen (a freshly loaded model).
    pub fn reset(&mut self) {
        self.history.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Mlp {
        Mlp {
            layers: vec![
                Dense {
                    inputs: 2,
                    outputs: 3,
                    weight: vec![0.1, -0.2, 0.3, 0.4, -0.5, 0.6],
                    bias: vec![0.01, 0.02, 0.03],
                },
                Dense { inputs: 3, outputs: 2, weight: vec![0.7, -0.8, 0.9, -0.1, 0.2, -0.3], bias: vec![0.0, 0.1] },
            ],
            activation: Activation::Tanh,
            norm: Some((vec![0.5, -0.5], vec![2.0, 1.0])),
        }
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let mlp = tiny();
        let rows = vec![vec![0.3, -1.2], vec![1.5, 0.4], vec![-0.7, 2.0]];
        let targets = [[1.0, 0.2], [0.0, 3.5], [0.5, 0.0]];
        let (_, grads) = mlp.loss_and_gradient(&rows, &targets, 0.7);
        let h = 1e-6;
        // The central difference of the loss along the one parameter `nudge` moves by its step.
        let numeric = |nudge: &dyn Fn(&mut Mlp, f64)| {
            let loss = |step: f64| {
                let mut moved = mlp.clone();
                nudge(&mut moved, step);
                moved.loss_and_gradient(&rows, &targets, 0.7).0
            };
            (loss(h) - loss(-h)) / (2.0 * h)
        };
        for (k, grad) in grads.iter().enumerate() {
            for i in 0..mlp.layers[k].weight.len() {
                let numeric = numeric(&|m, step| m.layers[k].weight[i] += step);
                assert!(
                    (numeric - grads[k].weight[i]).abs() < 1e-7,
                    "layer {k} weight {i}: {numeric} vs {}",
                    grads[k].weight[i]
                );
            }
            for i in 0..mlp.layers[k].bias.len() {
                let numeric = numeric(&|m, step| m.layers[k].bias[i] += step);
                assert!((numeric - grad.bias[i]).abs() < 1e-7, "layer {k} bias {i}");
            }
        }
    }

    #[test]
    fn the_support_is_the_latest_labelled_bars() {
        let mut model = MamlModel {
            base: tiny(),
            inner: InnerLoop { steps: 1, lr: 0.1, size_weight: 1.0 },
            horizon: 2,
            support_rows: 3,
            size_scale: 0.5,
            history: VecDeque::new(),
        };
        let closes = [100.0, 101.0, 99.0, 99.0, 102.0, 103.0, 101.0];
        for (t, close) in closes.iter().enumerate() {
            let row = if t == 1 { vec![f64::NAN, 0.0] } else { vec![t as f64, -(t as f64)] };
            let out = model.push(&row, *close);
            assert_eq!(out.is_none(), t == 1, "a row with a missing value has no prediction");
        }
        let (rows, targets) = model.support();
        // Labelled: t = 0..=4 (t + 2 known); t = 1 has a missing input; the newest 3 are t = 2, 3, 4.
        assert_eq!(rows, vec![vec![2.0, -2.0], vec![3.0, -3.0], vec![4.0, -4.0]]);
        let r = |a: f64, b: f64| (b / a).ln();
        assert_eq!(targets[0], [1.0, r(99.0, 102.0).abs() / 0.5]);
        assert_eq!(targets[1], [1.0, r(99.0, 103.0).abs() / 0.5]);
        assert_eq!(targets[2], [0.0, r(102.0, 101.0).abs() / 0.5]);
        // The prediction is the adapted network's.
        let adapted = model.base.adapt(&rows, &targets, &model.inner);
        let row = vec![6.0, -6.0];
        model.history.pop_back();
        let out = model.push(&row, 101.0).unwrap();
        assert_eq!(out.to_vec(), adapted.forward(&row));
    }

    #[test]
    fn adapting_lowers_the_support_loss() {
        let mlp = tiny();
        let rows = vec![vec![0.3, -1.2], vec![1.5, 0.4]];
        let targets = [[1.0, 0.2], [0.0, 1.5]];
        let inner = InnerLoop { steps: 5, lr: 0.1, size_weight: 1.0 };
        let before = mlp.loss_and_gradient(&rows, &targets, 1.0).0;
        let after = mlp.adapt(&rows, &targets, &inner).loss_and_gradient(&rows, &targets, 1.0).0;
        assert!(after < before, "{after} >= {before}");
        assert_eq!(mlp.adapt(&[], &[], &inner), mlp, "no support: no change");
    }
}
