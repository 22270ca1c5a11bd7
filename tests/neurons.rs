//! The [`Neuron`] trait's implementations against the code they wrap, bit
//! for bit: [`FsNeuron`] against [`FsCoding`] (forward, training forward,
//! the plain and the full backward, learnable tables), [`Lif`] through the
//! trait against its own kernels, [`Relu`] against the FS `relu` variant;
//! and every neuron's spike counts against its forward's total.

use fsnn::model::learn::{LearnMode, LearnableTables};
use fsnn::neuron::fs_grad::TableGrads;
use fsnn::neuron::{
    FsCoding, FsNeuron, FsTables, Grads, If, Lif, Neuron, Pass, Relu, Saved, Span, Surrogate,
    SurrogateKind, TimeLayout, Variant,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(seed: u64, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

/// Forward (training) through the trait: output, state, spike count.
fn run(neuron: &dyn Neuron, x: &[f32], span: Span, pass: Pass) -> (Vec<f32>, Vec<f32>, u64) {
    let mut y = vec![0.0; span.output_len(neuron.time())];
    let mut state = vec![0.0; neuron.state_len(span, pass)];
    let count = neuron.forward(x, span, &mut y, &mut state, pass);
    (y, state, count)
}

/// Backward through the trait: input gradient and parameter accumulators.
fn grad(
    neuron: &dyn Neuron,
    fwd: (&[f32], &[f32], &[f32]),
    gy: &[f32],
    span: Span,
    lam: f32,
) -> (Vec<f32>, Vec<f64>) {
    let mut gx = vec![0.0; span.output_len(neuron.time())];
    let mut acc = vec![0.0; neuron.grad_acc_len()];
    let saved = Saved {
        x: fwd.0,
        y: fwd.1,
        state: fwd.2,
    };
    let grads = Grads {
        gy,
        spike_lam: lam,
        gx: &mut gx,
        params: &mut acc,
    };
    neuron.backward(saved, span, grads);
    (gx, acc)
}

/// The spike counts per neuron sum to the forward's count.
fn check_counts(
    neuron: &dyn Neuron,
    fwd: (&[f32], &[f32], &[f32]),
    span: Span,
    total: u64,
) -> Vec<u32> {
    let mut counts = vec![7; span.n];
    let saved = Saved {
        x: fwd.0,
        y: fwd.1,
        state: fwd.2,
    };
    neuron.count_spikes(saved, span, &mut counts);
    assert_eq!(
        counts.iter().map(|&c| c as u64).sum::<u64>(),
        total,
        "{}",
        neuron.name()
    );
    counts
}

fn coding(variant: Variant) -> FsCoding {
    let tables = FsTables {
        t: vec![0.9, 0.5, 0.3, 0.1],
        h: vec![0.8, 0.45, 0.2, 0.1],
        d: vec![0.7, 0.4, 0.2, 0.12],
    };
    FsCoding::new(
        tables,
        variant,
        Surrogate::new(SurrogateKind::Triangle, 0.4),
    )
}

#[test]
fn fs_neuron_is_its_coding() {
    let n = 37; // two full lanes and a tail
    let x = random(1, n, -0.5, 2.0);
    let gy = random(2, n, -1.0, 1.0);
    let span = Span::new(n);
    for variant in [Variant::Fs, Variant::HalfSpike, Variant::Relu] {
        let c = coding(variant);
        let neuron = FsNeuron::new(c.clone(), LearnMode::Fixed);
        assert_eq!(neuron.time(), TimeLayout::Collapsed { k: 4 });
        let (y, _, count) = run(&neuron, &x, span, Pass::Infer);
        let mut want = vec![0.0; n];
        assert_eq!(
            (c.forward(&x, &mut want), &want),
            (count, &y),
            "{variant:?} infer"
        );
        let (y, du, count) = run(&neuron, &x, span, Pass::Train);
        let mut want_du = vec![0.0; n];
        assert_eq!(c.forward_train(&x, &mut want, &mut want_du), count);
        assert_eq!((&want, &want_du), (&y, &du), "{variant:?} train");
        let counts = check_counts(&neuron, (&x, &y, &du), span, count);
        assert!(counts.iter().zip(&x).all(|(&k, &v)| k == c.spikes_of(v)));
        let (gx, _) = grad(&neuron, (&x, &y, &du), &gy, span, 0.0);
        let want: Vec<f32> = gy.iter().zip(&du).map(|(g, d)| g * d).collect();
        assert_eq!(gx, want, "{variant:?} backward");
        if variant == Variant::Relu {
            continue;
        }
        let (gx, _) = grad(&neuron, (&x, &y, &du), &gy, span, 0.03);
        let (mut want, mut tg) = (vec![0.0; n], TableGrads::zeros(4));
        c.backward_full(&x, &gy, 0.03, &mut want, &mut tg);
        assert_eq!(gx, want, "{variant:?} backward with a spike cost");
    }
}

#[test]
fn fs_neuron_learns_its_tables_as_the_mlp_did() {
    let (n, span) = (29, Span::new(29));
    let x = random(3, n, -0.5, 2.0);
    let gy = random(4, n, -1.0, 1.0);
    for mode in [LearnMode::Alpha, LearnMode::Tables] {
        let c = coding(Variant::Fs);
        let mut neuron = FsNeuron::new(c.clone(), mode);
        let (y, du, _) = run(&neuron, &x, span, Pass::Train);
        let (gx, acc) = grad(&neuron, (&x, &y, &du), &gy, span, 0.0);
        // the MLP's former sequence: tables from the parameters, a full
        // backward into cleared table gradients, then the chain rule
        let mut learn = LearnableTables::new(mode, &c.tables);
        let mut c2 = c.clone();
        c2.tables = learn.tables();
        let (mut want, mut tg) = (vec![0.0; n], TableGrads::zeros(4));
        c2.backward_full(&x, &gy, 0.0, &mut want, &mut tg);
        learn.set_grad(&tg, &c2.tables);
        assert_eq!(gx, want, "{mode:?} gx");
        assert_eq!(acc, [tg.t, tg.h, tg.d].concat(), "{mode:?} table sums");
        neuron.finish_grads(&acc);
        let (raw, g) = neuron.params_mut().expect("learnable");
        assert_eq!(
            (raw.to_vec(), g.to_vec()),
            (learn.raw.clone(), learn.grad.clone())
        );
        raw[0] += 0.25;
        learn.raw[0] += 0.25;
        neuron.after_step();
        assert_eq!(
            neuron.coding.tables,
            learn.tables(),
            "{mode:?} tables follow"
        );
    }
    assert!(
        FsNeuron::new(coding(Variant::Fs), LearnMode::Fixed)
            .params_mut()
            .is_none()
    );
}

fn lif(detach: bool) -> Lif {
    Lif {
        t: 5,
        v_th: 0.5,
        tau: 0.6,
        detach_reset: detach,
        surrogate: Surrogate::default(),
    }
}

#[test]
fn lif_through_the_trait_is_lif() {
    let n = 23;
    for (constant, detach) in [(false, false), (true, false), (false, true)] {
        let p = lif(detach);
        let span = Span { n, constant };
        let x = random(5, span.input_len(p.time()), -0.3, 1.2);
        let gy = random(6, 5 * n, -1.0, 1.0);
        let (o, u, count) = run(&p, &x, span, Pass::Train);
        let (mut u2, mut o2) = (vec![0.0; 5 * n], vec![0.0; 5 * n]);
        assert_eq!(p.forward(&x, constant, n, &mut u2, &mut o2), count);
        assert_eq!((&u2, &o2), (&u, &o));
        check_counts(&p, (&x, &o, &u), span, count);
        let (gx, _) = grad(&p, (&x, &o, &u), &gy, span, 0.0);
        let mut want = vec![0.0; 5 * n];
        p.backward(&u, &o, &gy, n, &mut want);
        assert_eq!(gx, want);
        // a spike cost λ adds λ to every step's spike gradient
        let (gx, _) = grad(&p, (&x, &o, &u), &gy, span, 0.25);
        let shifted: Vec<f32> = gy.iter().map(|g| g + 0.25).collect();
        p.backward(&u, &o, &shifted, n, &mut want);
        assert_eq!(gx, want);
    }
}

#[test]
fn relu_is_the_fs_relu_variant_and_the_plain_relu() {
    let (n, span) = (40, Span::new(40));
    let x = random(7, n, -1.0, 2.0);
    let c = coding(Variant::Relu);
    let relu = Relu { top: c.top() };
    let (y, d, count) = run(&relu, &x, span, Pass::Train);
    let (mut want, mut want_d) = (vec![0.0; n], vec![0.0; n]);
    assert_eq!(c.forward_train(&x, &mut want, &mut want_d), count);
    assert_eq!((want, want_d), (y, d.clone()));
    assert!(d.contains(&0.0) && d.contains(&1.0));
    let (y, _, _) = run(&Relu::default(), &x, span, Pass::Infer);
    assert_eq!(y, x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>());
    assert_eq!(check_counts(&relu, (&x, &y, &d), span, 0), vec![0; n]);
}

#[test]
fn every_neuron_declares_its_time() {
    let s = Surrogate::default();
    let neurons: [Box<dyn Neuron>; 4] = [
        Box::new(FsNeuron::new(coding(Variant::Fs), LearnMode::Fixed)),
        Box::new(lif(false)),
        Box::new(If {
            t: 8,
            v_th: 1.0,
            detach_reset: false,
            surrogate: s,
        }),
        Box::new(Relu::default()),
    ];
    let got: Vec<_> = neurons
        .iter()
        .map(|n| (n.name(), n.time().steps(), n.time().values_per_neuron()))
        .collect();
    assert_eq!(
        got,
        [("fs", 4, 1), ("lif", 5, 5), ("if", 8, 8), ("relu", 0, 1)]
    );
}
