//! The ANN (`relu` variant) and `fsnn convert`.

mod common;

use common::{assert_input_error, fsnn_cmd, mnist_dir, read_json};
use fsnn::neuron::{FsCoding, FsTables, Surrogate, Variant};

#[test]
fn relu_variant_is_a_clipped_relu_without_spikes() {
    let c = FsCoding::new(
        FsTables::binary(3, 2.0),
        Variant::Relu,
        Surrogate::default(),
    );
    // top = α(1 − 2^−K) = 1.75
    let x = [-1.0f32, 0.0, 0.3, 1.0, 1.75, 2.5];
    let mut out = [0.0f32; 6];
    assert_eq!(c.forward(&x, &mut out), 0, "an ANN emits no spikes");
    assert_eq!(out, [0.0, 0.0, 0.3, 1.0, 1.75, 1.75]);
    let mut d = [0.0f32; 6];
    c.forward_train(&x, &mut out, &mut d);
    assert_eq!(d, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    let mut gx = [0.0f32; 6];
    c.backward(&x, &[2.0; 6], &mut gx);
    assert_eq!(gx, [0.0, 0.0, 2.0, 2.0, 0.0, 0.0]);
    assert_eq!(c.bias_scale(), 1.0);
    // The FS coding with the same tables quantises the same range.
    let fs = FsCoding::new(FsTables::binary(3, 2.0), Variant::Fs, Surrogate::default());
    let mut q = [0.0f32; 6];
    fs.forward(&x, &mut q);
    for (a, b) in q.iter().zip(&out) {
        assert!((a - b).abs() <= 0.25 + 1e-6, "within one step q = α·2^−K");
    }
}

#[test]
fn convert_an_ann_to_fs_and_fine_tune() {
    if !common::require_data(&mnist_dir(), "convert_an_ann_to_fs_and_fine_tune") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("ann.toml");
    std::fs::write(
        &cfg,
        r#"name = "ann"
[data]
train_limit = 6000
test_limit = 1000
[model]
layers = [121, 64, 124, 64, 124, 10]
k = [4, 3, 3, 3, 2]
alpha = [1.0, 2.0, 3.0, 2.0, 1.0]
variant = "relu"
[train]
epochs = 2
"#,
    )
    .unwrap();
    let ann = tmp.path().join("ann");
    let st = fsnn_cmd()
        .args(["train", "-q", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&ann)
        .arg("--data")
        .arg(mnist_dir())
        .status()
        .unwrap();
    assert!(st.success());
    let summary = read_json(&ann.join("summary.json"));
    assert_eq!(summary["spikes_per_image"].as_f64(), Some(0.0));

    let conv = tmp.path().join("conv");
    let st = fsnn_cmd()
        .args([
            "convert",
            "-q",
            "--k",
            "10,10,10,10,10",
            "--finetune-epochs",
            "1",
        ])
        .arg("--checkpoint")
        .arg(ann.join("model.safetensors"))
        .arg("--out")
        .arg(&conv)
        .arg("--data")
        .arg(mnist_dir())
        .status()
        .unwrap();
    assert!(st.success());
    let r = read_json(&conv.join("convert.json"));
    let ann_acc = r["ann"]["accuracy"].as_f64().unwrap();
    let fs_acc = r["converted"]["accuracy"].as_f64().unwrap();
    assert!(ann_acc > 80.0, "ANN {ann_acc}");
    // 10-bit codings reproduce the ANN closely.
    assert!(
        (ann_acc - fs_acc).abs() < 2.0,
        "ANN {ann_acc} vs converted {fs_acc}"
    );
    assert!(r["converted"]["spikes_per_image"].as_f64().unwrap() > 0.0);
    assert!(r["finetuned"]["accuracy"].as_f64().unwrap() > 80.0);
    assert!(conv.join("model.safetensors").exists());
    assert!(conv.join("finetune/summary.json").exists());
    // The converted model evaluates to the reported numbers.
    let json = tmp.path().join("eval.json");
    let st = fsnn_cmd()
        .args(["eval", "--checkpoint"])
        .arg(conv.join("model.safetensors"))
        .arg("--data")
        .arg(mnist_dir())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(st.status.success());
    let e = read_json(&json);
    assert_eq!(e["accuracy"].as_f64(), Some(fs_acc));
}

#[test]
fn convert_rejects_a_bad_checkpoint_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("x.safetensors");
    std::fs::write(&bad, b"not a model").unwrap();
    let out = fsnn_cmd()
        .args(["convert", "--checkpoint"])
        .arg(&bad)
        .arg("--out")
        .arg(tmp.path().join("o"))
        .output()
        .unwrap();
    assert_input_error(&out, &["x.safetensors"]);
    assert!(!tmp.path().join("o").exists());
}

/// Train the ANN of config `text` into `dir/ann`; the ANN's checkpoint.
fn train_ann(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let (cfg, ann) = (dir.join("ann.toml"), dir.join("ann"));
    std::fs::write(&cfg, text).unwrap();
    common::assert_ok(&common::train(dir, &cfg, &ann, &mnist_dir(), &[]));
    ann.join("model.safetensors")
}

/// `convert.json` of `fsnn convert` with `args` into `out`.
fn convert(ann: &std::path::Path, out: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let data = mnist_dir();
    let mut all = vec!["convert", "-q", "--checkpoint", common::s(ann)];
    all.extend_from_slice(args);
    all.extend(["--out", common::s(out), "--data", common::s(&data)]);
    common::assert_ok(&common::fsnn(out.parent().expect("a parent"), &all));
    read_json(&out.join("convert.json"))
}

#[test]
fn convert_a_relu_conv_net_to_fs() {
    if !common::require_data(&mnist_dir(), "convert_a_relu_conv_net_to_fs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let arch = r#"["fs", "conv 16 3x3 pad 1", "fs", "avgpool 2", "fc 32", "fs", "fc 10"]"#;
    let text = format!(
        "name = \"cnn-ann\"\n[data]\ntrain_limit = 4000\ntest_limit = 500\n\
         [model]\narch = {arch}\nk = [4, 3, 3]\nalpha = [1.0, 2.0, 2.0]\nvariant = \"relu\"\n\
         [train]\nepochs = 2\nbatch_size = 50\n"
    );
    let ann = train_ann(tmp.path(), &text);
    let conv = tmp.path().join("conv");
    let r = convert(&ann, &conv, &["--k", "10,10,10"]);
    let (ann_acc, fs_acc) = (
        r["ann"]["accuracy"].as_f64().unwrap(),
        r["converted"]["accuracy"].as_f64().unwrap(),
    );
    assert!(ann_acc > 50.0, "ANN {ann_acc}");
    assert_eq!(
        r["ann"]["spikes_per_image"].as_f64(),
        Some(0.0),
        "an ANN emits no spikes"
    );
    assert_eq!(r["ann"]["cost"]["sops_per_image"].as_f64(), Some(0.0));
    // 10-bit codings reproduce the ANN closely
    assert!(
        (ann_acc - fs_acc).abs() < 2.0,
        "ANN {ann_acc} vs converted {fs_acc}"
    );
    assert!(r["converted"]["spikes_per_image"].as_f64().unwrap() > 0.0);
    assert!(r["converted"]["cost"]["sops_per_image"].as_f64().unwrap() > 0.0);
    // the converted net keeps the ANN's weights
    let (a, _) = fsnn::checkpoint::load(&ann).unwrap();
    let (c, cfg) = fsnn::checkpoint::load(&conv.join("model.safetensors")).unwrap();
    assert_eq!(cfg.model.variant, Variant::Fs);
    assert_eq!(a.layers().len(), 3);
    for (x, y) in a.layers().iter().zip(c.layers()) {
        assert_eq!((&x.weight, &x.bias), (&y.weight, &y.bias));
    }
}

#[test]
fn convert_an_ann_to_if_rate_coding() {
    if !common::require_data(&mnist_dir(), "convert_an_ann_to_if_rate_coding") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let text = "name = \"ann\"\n[data]\ntrain_limit = 4000\ntest_limit = 500\n\
                [model]\nlayers = [121, 64, 10]\nk = [4, 3]\nalpha = [1.0, 2.0]\nvariant = \"relu\"\n\
                [train]\nepochs = 2\n";
    let ann = train_ann(tmp.path(), text);
    let mut runs = vec![];
    for t in ["8", "64"] {
        let out = tmp.path().join(format!("if{t}"));
        let r = convert(&ann, &out, &["--neuron", "if", "--t", t]);
        assert!(
            out.join("model.safetensors").exists(),
            "the IF network is saved"
        );
        runs.push((
            r["ann"]["accuracy"].as_f64().unwrap(),
            r["converted"]["accuracy"].as_f64().unwrap(),
            r["converted"]["spikes_per_image"].as_f64().unwrap(),
        ));
    }
    let ((ann_acc, acc8, spikes8), (_, acc64, spikes64)) = (runs[0], runs[1]);
    assert!(ann_acc > 70.0, "ANN {ann_acc}");
    // rate coding approaches the ANN with many steps, at many spikes
    assert!(
        (ann_acc - acc64).abs() < 3.0,
        "ANN {ann_acc} vs IF T=64 {acc64} (T=8: {acc8})"
    );
    assert!(
        spikes64 > 4.0 * spikes8 && spikes8 > 0.0,
        "spikes T=8 {spikes8}, T=64 {spikes64}"
    );
    let (net, cfg) = fsnn::checkpoint::load(&tmp.path().join("if64/model.safetensors")).unwrap();
    assert_eq!(cfg.model.neuron, fsnn::config::NeuronKind::If);
    assert_eq!(net.latency(), (64, 64));
}
