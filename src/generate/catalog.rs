//! The tag catalogue: what each kind of unit (mixer, oven, filler, packer)
//! measures, with units, engineering ranges and the kind of signal that
//! drives each tag. A unit has its named tags first, then numbered sensors
//! (dosing flows, zone temperatures, nozzles, servos, …) up to the plant's
//! `tags_per_unit`.

#[derive(Clone, Copy)]
pub(super) enum Signal {
    /// Free-running: base + slow sine + mean-reverting walk + noise; falls to
    /// `idle` while the unit is stopped if given.
    Analog {
        base: f64,
        swing: f64,
        period: f64,
        walk: f64,
        noise: f64,
        idle: Option<f64>,
    },
    /// A recipe value chosen per run from `choices`, plus `offset`.
    Setpoint {
        key: &'static str,
        choices: &'static [f64],
        offset: f64,
    },
    /// Follows the matching setpoint with a first-order lag `tau` (s).
    Tracking {
        key: &'static str,
        choices: &'static [f64],
        offset: f64,
        tau: f64,
        noise: f64,
        idle: Option<f64>,
    },
    /// 0/1: the unit is running.
    Running,
    /// 0/1 switching with exponential dwell times (s).
    Toggle { mean_on: f64, mean_off: f64 },
    /// Monotonic count, `rate` per second while running.
    Counter { rate: f64 },
    /// The unit state as text (value null).
    State,
}

pub(super) struct TagSpec {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) unit: &'static str,
    pub(super) low: Option<f64>,
    pub(super) high: Option<f64>,
    pub(super) signal: Signal,
}

fn tag(
    name: impl Into<String>,
    description: impl Into<String>,
    unit: &'static str,
    range: (f64, f64),
    signal: Signal,
) -> TagSpec {
    let (low, high) = match signal {
        Signal::Running | Signal::Toggle { .. } => (Some(0.0), Some(1.0)),
        Signal::Counter { .. } => (Some(0.0), None),
        Signal::State => (None, None),
        _ => (Some(range.0), Some(range.1)),
    };
    TagSpec {
        name: name.into(),
        description: description.into(),
        unit,
        low,
        high,
        signal,
    }
}

fn analog(base: f64, swing: f64, period: f64, walk: f64, noise: f64, idle: Option<f64>) -> Signal {
    Signal::Analog {
        base,
        swing,
        period,
        walk,
        noise,
        idle,
    }
}

fn sp(key: &'static str, choices: &'static [f64], offset: f64) -> Signal {
    Signal::Setpoint {
        key,
        choices,
        offset,
    }
}

fn pv(
    key: &'static str,
    choices: &'static [f64],
    offset: f64,
    tau: f64,
    noise: f64,
    idle: Option<f64>,
) -> Signal {
    Signal::Tracking {
        key,
        choices,
        offset,
        tau,
        noise,
        idle,
    }
}

const MIXER_SPEED: &[f64] = &[60.0, 80.0, 100.0, 120.0];
const MIXER_TEMP: &[f64] = &[25.0, 30.0, 35.0, 40.0];
const OVEN_TEMP: &[f64] = &[180.0, 200.0, 220.0];
const OVEN_BELT: &[f64] = &[1.2, 1.5, 1.8];
const ZONE_OFFSET: [f64; 8] = [-20.0, -10.0, 0.0, 5.0, 10.0, 5.0, 0.0, -15.0];
const FILLER_SPEED: &[f64] = &[90.0, 110.0, 120.0];
const FILL_WEIGHT: &[f64] = &[500.0, 750.0, 1000.0];
const PACKER_SPEED: &[f64] = &[20.0, 24.0, 30.0];
const SEAL_TEMP: &[f64] = &[150.0, 160.0, 170.0];

/// Operation a unit kind performs in a production run (`production_runs.operation`).
pub(super) const OPERATIONS: [&str; 4] = ["mix", "bake", "fill", "pack"];

/// The first `count` tags of a unit of kind `unit` (0 mixer, 1 oven, 2 filler, 3 packer).
#[rustfmt::skip]
pub(super) fn unit_specs(unit: usize, count: usize) -> Vec<TagSpec> {
    let (running, state) = (Signal::Running, Signal::State);
    let mut v = match unit {
        0 => vec![
            tag("speed", "agitator speed", "rpm", (0.0, 200.0), pv("speed", MIXER_SPEED, 0.0, 5.0, 0.5, Some(0.0))),
            tag("speed_setpoint", "agitator speed setpoint", "rpm", (0.0, 200.0), sp("speed", MIXER_SPEED, 0.0)),
            tag("temperature", "jacket temperature", "degC", (0.0, 100.0), pv("temp", MIXER_TEMP, 0.0, 120.0, 0.1, None)),
            tag("setpoint", "jacket temperature setpoint", "degC", (0.0, 100.0), sp("temp", MIXER_TEMP, 0.0)),
            tag("motor_current", "motor current", "A", (0.0, 100.0), analog(42.0, 3.0, 900.0, 0.05, 0.4, Some(0.5))),
            tag("torque", "agitator torque", "N.m", (0.0, 400.0), analog(180.0, 15.0, 1200.0, 0.2, 2.0, Some(0.0))),
            tag("level", "bowl level", "%", (0.0, 100.0), analog(55.0, 20.0, 360.0, 0.1, 0.3, None)),
            tag("pressure", "bowl pressure", "bar", (0.0, 6.0), analog(1.2, 0.1, 1500.0, 0.002, 0.01, None)),
            tag("vibration", "gearbox vibration", "mm/s", (0.0, 20.0), analog(2.1, 0.3, 2000.0, 0.01, 0.15, Some(0.05))),
            tag("running", "mixer running", "", (0.0, 1.0), running),
            tag("state", "mixer state", "", (0.0, 0.0), state),
            tag("batch_count", "batches mixed", "5B", (0.0, 0.0), Signal::Counter { rate: 1.0 / 360.0 }),
            tag("water_flow", "water dosing flow", "l/min", (0.0, 50.0), analog(12.0, 4.0, 600.0, 0.05, 0.3, Some(0.0))),
            tag("ph", "dough pH", "pH", (0.0, 14.0), analog(6.8, 0.15, 2400.0, 0.002, 0.02, None)),
            tag("viscosity", "dough viscosity", "mPa.s", (0.0, 10000.0), analog(3200.0, 300.0, 1800.0, 2.0, 25.0, None)),
        ],
        1 => vec![
            tag("temperature", "average oven temperature", "degC", (0.0, 350.0), pv("temp", OVEN_TEMP, 0.0, 180.0, 0.3, None)),
            tag("setpoint", "oven temperature setpoint", "degC", (0.0, 350.0), sp("temp", OVEN_TEMP, 0.0)),
            tag("belt_speed", "belt speed", "m/min", (0.0, 5.0), pv("belt", OVEN_BELT, 0.0, 10.0, 0.01, Some(0.0))),
            tag("humidity", "baking chamber humidity", "%RH", (0.0, 100.0), analog(35.0, 5.0, 1800.0, 0.05, 0.3, None)),
            tag("exhaust_temperature", "exhaust temperature", "degC", (0.0, 300.0), analog(140.0, 8.0, 1500.0, 0.05, 0.5, None)),
            tag("gas_flow", "burner gas flow", "m3/h", (0.0, 60.0), analog(22.0, 3.0, 900.0, 0.05, 0.3, Some(2.0))),
            tag("burner_on", "burner firing", "", (0.0, 1.0), Signal::Toggle { mean_on: 90.0, mean_off: 40.0 }),
            tag("running", "oven belt running", "", (0.0, 1.0), running),
            tag("state", "oven state", "", (0.0, 0.0), state),
        ],
        2 => vec![
            tag("speed", "filling speed", "1/min", (0.0, 200.0), pv("speed", FILLER_SPEED, 0.0, 8.0, 0.8, Some(0.0))),
            tag("speed_setpoint", "filling speed setpoint", "1/min", (0.0, 200.0), sp("speed", FILLER_SPEED, 0.0)),
            tag("running", "filler running", "", (0.0, 1.0), running),
            tag("state", "filler state", "", (0.0, 0.0), state),
            tag("count", "bottles filled", "pcs", (0.0, 0.0), Signal::Counter { rate: 1.8 }),
            tag("reject_count", "bottles rejected", "pcs", (0.0, 0.0), Signal::Counter { rate: 0.01 }),
            tag("fill_weight", "fill weight", "g", (0.0, 1500.0), pv("weight", FILL_WEIGHT, 0.0, 1.0, 1.5, None)),
            tag("fill_weight_target", "fill weight target", "g", (0.0, 1500.0), sp("weight", FILL_WEIGHT, 0.0)),
            tag("tank_level", "product tank level", "%", (0.0, 100.0), analog(62.0, 15.0, 700.0, 0.1, 0.2, None)),
            tag("tank_temperature", "product tank temperature", "degC", (0.0, 40.0), analog(8.0, 0.5, 2500.0, 0.005, 0.05, None)),
            tag("product_pressure", "product pressure", "bar", (0.0, 6.0), analog(2.4, 0.1, 1100.0, 0.002, 0.02, None)),
            tag("cap_torque", "capping torque", "N.m", (0.0, 5.0), analog(1.9, 0.05, 1300.0, 0.001, 0.05, Some(0.0))),
            tag("co2_pressure", "CO2 pressure", "bar", (0.0, 8.0), analog(3.1, 0.1, 1700.0, 0.002, 0.02, None)),
        ],
        _ => vec![
            tag("speed", "packing speed", "1/min", (0.0, 60.0), pv("speed", PACKER_SPEED, 0.0, 6.0, 0.3, Some(0.0))),
            tag("speed_setpoint", "packing speed setpoint", "1/min", (0.0, 60.0), sp("speed", PACKER_SPEED, 0.0)),
            tag("running", "packer running", "", (0.0, 1.0), running),
            tag("state", "packer state", "", (0.0, 0.0), state),
            tag("count", "packs made", "pcs", (0.0, 0.0), Signal::Counter { rate: 0.4 }),
            tag("reject_count", "packs rejected", "pcs", (0.0, 0.0), Signal::Counter { rate: 0.003 }),
            tag("carton_count", "cartons closed", "pcs", (0.0, 0.0), Signal::Counter { rate: 0.4 / 12.0 }),
            tag("seal_temperature", "sealing jaw temperature", "degC", (0.0, 250.0), pv("seal", SEAL_TEMP, 0.0, 60.0, 0.3, None)),
            tag("seal_setpoint", "sealing jaw setpoint", "degC", (0.0, 250.0), sp("seal", SEAL_TEMP, 0.0)),
            tag("film_tension", "film tension", "N", (0.0, 100.0), analog(45.0, 3.0, 800.0, 0.05, 0.5, Some(5.0))),
            tag("glue_temperature", "hot-melt glue temperature", "degC", (0.0, 220.0), analog(165.0, 2.0, 2000.0, 0.01, 0.2, None)),
            tag("glue_level", "glue tank level", "%", (0.0, 100.0), analog(70.0, 20.0, 3400.0, 0.05, 0.2, None)),
            tag("label_ok", "label check passed", "", (0.0, 1.0), Signal::Toggle { mean_on: 900.0, mean_off: 8.0 }),
            tag("air_pressure", "compressed air pressure", "bar", (0.0, 10.0), analog(6.2, 0.1, 1000.0, 0.002, 0.03, None)),
            tag("motor_current", "main drive current", "A", (0.0, 40.0), analog(12.0, 1.0, 700.0, 0.02, 0.2, Some(0.3))),
            tag("vibration", "main drive vibration", "mm/s", (0.0, 20.0), analog(1.4, 0.2, 1500.0, 0.01, 0.1, Some(0.02))),
        ],
    };
    // Numbered sensors bring every unit to `count` tags.
    v.truncate(count);
    for i in 1..=count - v.len() {
        let f = i as f64;
        let g = (i % 7) as f64;
        v.push(match unit {
            0 if i <= 6 => tag(format!("ingredient{i}_flow"), format!("ingredient {i} dosing flow"), "kg/min", (0.0, 50.0), analog(3.0 + 2.0 * f, 1.0, 240.0 + 60.0 * f, 0.02, 0.1, Some(0.0))),
            0 => tag(format!("bearing{}.temperature", i - 6), format!("bearing {} temperature", i - 6), "degC", (0.0, 120.0), analog(46.0 + g, 2.0, 3000.0 + 7.0 * f, 0.01, 0.1, None)),
            1 if i <= 8 => tag(format!("zone{i}.temperature"), format!("zone {i} temperature"), "degC", (0.0, 350.0), pv("temp", OVEN_TEMP, ZONE_OFFSET[i - 1], 150.0 + 10.0 * f, 0.4, None)),
            1 if i <= 16 => tag(format!("zone{}.setpoint", i - 8), format!("zone {} temperature setpoint", i - 8), "degC", (0.0, 350.0), sp("temp", OVEN_TEMP, ZONE_OFFSET[i - 9])),
            1 => tag(format!("thermocouple{}.temperature", i - 16), format!("belt thermocouple {}", i - 16), "degC", (0.0, 350.0), pv("temp", OVEN_TEMP, ZONE_OFFSET[i % 8] / 2.0, 200.0 + 5.0 * g, 0.5, None)),
            2 => tag(format!("nozzle{i}.flow"), format!("nozzle {i} flow"), "l/s", (0.0, 5.0), analog(1.8, 0.05, 400.0 + 37.0 * f, 0.002, 0.04, Some(0.0))),
            _ => tag(format!("servo{i}.current"), format!("servo {i} current"), "A", (0.0, 20.0), analog(3.0 + 0.2 * g, 0.3, 500.0 + 41.0 * f, 0.005, 0.08, Some(0.1))),
        });
    }
    v
}

pub(super) fn value_type(signal: &Signal) -> &'static str {
    match signal {
        Signal::Running | Signal::Toggle { .. } => "bool",
        Signal::Counter { .. } => "int",
        Signal::State => "string",
        _ => "float",
    }
}

pub(super) fn interpolation(signal: &Signal) -> &'static str {
    match signal {
        Signal::Analog { .. } | Signal::Tracking { .. } => "linear",
        _ => "step",
    }
}
