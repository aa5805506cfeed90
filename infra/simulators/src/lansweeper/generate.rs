//! A generated site with the variety of a real estate: Windows, Linux, macOS, network
//! and OT devices; placeholder serials; MAC addresses in every notation; missing fields;
//! non-ASCII and quote-bearing names; duplicate names; long software lists.
//! Deterministic from a seed, any size.

use serde_json::{Value, json};

use super::site::{Site, SiteData};
use crate::connectwise::generate::{CITIES, SITE_KINDS};
use crate::rng::Rng;

pub const TOKEN: &str = "simtoken";
pub const SITE_ID: &str = "sim-site";
pub const SITE_NAME: &str = "sim-msp";

#[derive(Debug, Clone)]
pub struct SiteSpec {
    pub seed: u64,
    pub assets: usize,
}

impl Default for SiteSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            assets: 2_000,
        }
    }
}

/// Serials that identify nothing: what firmware leaves when the vendor did not fill it.
pub const PLACEHOLDER_SERIALS: &[&str] = &[
    "To be filled by O.E.M.",
    "Default string",
    "0",
    "System Serial Number",
    "None",
    "",
];

/// Manufacturers an MSP's ConnectWise has not met yet.
const NEW_MANUFACTURERS: &[&str] = &[
    "Raspberry Pi Foundation",
    "Beckhoff Automation",
    "Hewlett Packard Enterprise Development LP, Storage and Networking Division",
];

const STATES: &[&str] = &[
    "Active",
    "Active",
    "Active",
    "Active",
    "Non-active",
    "Broken",
    "In repair",
    "Stock",
    "Old",
];

struct Kind {
    asset_type: &'static str,
    weight: usize,
    manufacturers: &'static [&'static str],
    models: &'static [&'static str],
    os: &'static [&'static str],
}

const KINDS: &[Kind] = &[
    Kind {
        asset_type: "Windows",
        weight: 45,
        manufacturers: &[
            "Dell Inc.",
            "HP",
            "Lenovo",
            "Microsoft Corporation",
            "ASUS",
            "Acer",
        ],
        models: &[
            "OptiPlex 7090",
            "Latitude 5440",
            "EliteBook 840 G9",
            "ThinkPad T14 Gen 3",
            "Surface Laptop 5",
            "ProDesk 400 G7",
        ],
        os: &[
            "Microsoft Windows 11 Pro",
            "Microsoft Windows 10 Enterprise",
            "Microsoft Windows Server 2022 Standard",
            "Microsoft Windows Server 2019 Datacenter",
        ],
    },
    Kind {
        asset_type: "Linux",
        weight: 12,
        manufacturers: &["Dell Inc.", "Supermicro", "HP", "VMware, Inc."],
        models: &[
            "PowerEdge R650",
            "SYS-1029P",
            "ProLiant DL360 Gen10",
            "VMware Virtual Platform",
        ],
        os: &[
            "Ubuntu 22.04.4 LTS",
            "Debian GNU/Linux 12 (bookworm)",
            "Red Hat Enterprise Linux 9.3",
            "Rocky Linux 8.9",
        ],
    },
    Kind {
        asset_type: "Macintosh",
        weight: 8,
        manufacturers: &["Apple Inc."],
        models: &[
            "MacBook Pro (14-inch, 2023)",
            "MacBook Air (M2, 2022)",
            "Mac mini (2023)",
            "iMac (24-inch, M3)",
        ],
        os: &["macOS 14.5 Sonoma", "macOS 13.6 Ventura"],
    },
    Kind {
        asset_type: "Switch",
        weight: 6,
        manufacturers: &[
            "Cisco Systems",
            "Aruba Networks",
            "Juniper Networks",
            "Ubiquiti",
        ],
        models: &[
            "Catalyst 9300-48P",
            "Aruba 2930F",
            "EX2300-24T",
            "USW-Pro-24",
        ],
        os: &[],
    },
    Kind {
        asset_type: "Router",
        weight: 3,
        manufacturers: &["Cisco Systems", "Juniper Networks", "TP-Link"],
        models: &["ISR 4331", "SRX300", "ER605"],
        os: &[],
    },
    Kind {
        asset_type: "Firewall",
        weight: 2,
        manufacturers: &["Fortinet", "Palo Alto Networks"],
        models: &["FortiGate 60F", "PA-440"],
        os: &[],
    },
    Kind {
        asset_type: "Printer",
        weight: 6,
        manufacturers: &["Brother", "Canon", "Epson", "Xerox", "Ricoh", "HP"],
        models: &[
            "HL-L8360CDW",
            "imageRUNNER C3226i",
            "WorkForce Pro WF-C879R",
            "VersaLink C405",
            "IM C3000",
            "LaserJet Pro M404dn",
        ],
        os: &[],
    },
    Kind {
        asset_type: "NAS",
        weight: 3,
        manufacturers: &["Synology", "QNAP"],
        models: &["DS923+", "TS-464"],
        os: &[],
    },
    Kind {
        asset_type: "OT",
        weight: 8,
        manufacturers: &[
            "Rockwell Automation",
            "Siemens",
            "Schneider Electric",
            "ABB",
            "Beckhoff Automation",
        ],
        models: &[
            "1756-EN2T/D",
            "S7-1500 CPU 1516-3",
            "Modicon M580",
            "AC500 PM5630",
            "CX5140",
        ],
        os: &[],
    },
    Kind {
        asset_type: "Mobile",
        weight: 4,
        manufacturers: &["Apple Inc.", "Samsung", "Zebra Technologies"],
        models: &["iPhone 15", "Galaxy S23", "TC52"],
        os: &["iOS 17.5", "Android 14"],
    },
    Kind {
        asset_type: "Raspberry Pi",
        weight: 3,
        manufacturers: &["Raspberry Pi Foundation"],
        models: &["Raspberry Pi 4 Model B Rev 1.4"],
        os: &["Raspbian GNU/Linux 11 (bullseye)"],
    },
];

const PEOPLE: &[&str] = &[
    "jsmith", "anaïs", "o'brien", "müller", "nguyen", "garcía", "kowalski", "dubois", "tanaka",
    "svensson",
];

const SOFTWARE: &[(&str, &str)] = &[
    (
        "Microsoft 365 Apps for enterprise - en-us",
        "Microsoft Corporation",
    ),
    ("Google Chrome", "Google LLC"),
    ("Mozilla Firefox (x64 en-US)", "Mozilla"),
    ("7-Zip 23.01 (x64)", "Igor Pavlov"),
    ("Adobe Acrobat Reader DC", "Adobe Inc."),
    ("Zoom Workplace", "Zoom Video Communications, Inc."),
    ("Microsoft Teams", "Microsoft Corporation"),
    ("Notepad++ (64-bit x64)", "Notepad++ Team"),
    ("VLC media player", "VideoLAN"),
    ("ConnectWise Automate Agent", "ConnectWise, LLC"),
    ("SentinelOne Agent", "SentinelOne"),
    ("Lansweeper Agent", "Lansweeper"),
    (
        "Microsoft Visual C++ 2015-2022 Redistributable (x64)",
        "Microsoft Corporation",
    ),
    ("Python 3.12.3 (64-bit)", "Python Software Foundation"),
    ("Git", "The Git Development Community"),
    ("Java 8 Update 411", "Oracle Corporation"),
];

pub fn generate(spec: &SiteSpec) -> Result<Site, String> {
    let mut rng = Rng::new(spec.seed.wrapping_add(0x5EED));
    let mut assets: Vec<Value> = Vec::with_capacity(spec.assets);
    let mut names: Vec<String> = Vec::new();
    let total_weight: usize = KINDS.iter().map(|k| k.weight).sum();
    for index in 0..spec.assets {
        let mut roll = rng.below(total_weight);
        let kind = KINDS
            .iter()
            .find(|k| {
                if roll < k.weight {
                    true
                } else {
                    roll -= k.weight;
                    false
                }
            })
            .unwrap_or(&KINDS[0]);
        let name = if !names.is_empty() && rng.chance(3) {
            // Duplicate names happen: re-imaged machines, cloned VMs.
            rng.pick(&names).clone()
        } else {
            asset_name(&mut rng, kind, index)
        };
        names.push(name.clone());
        assets.push(asset(&mut rng, kind, &name));
    }
    Site::new(SiteData {
        id: SITE_ID.into(),
        name: SITE_NAME.into(),
        custom_fields: Vec::new(),
        assets,
    })
}

fn asset_name(rng: &mut Rng, kind: &Kind, index: usize) -> String {
    match kind.asset_type {
        "Windows" => match rng.below(10) {
            0 => format!("Réception-PC-{index}"),
            1 => format!("{}'s \"Work\" PC {index}", rng.pick(PEOPLE)),
            2 => format!("LT-{}-{index:04}", rng.pick(PEOPLE).to_uppercase()),
            _ => format!("DESKTOP-{}", rng.alnum_upper(7)),
        },
        "Linux" => format!(
            "srv-{}-{:02}",
            rng.pick(&["web", "db", "app", "backup", "k8s"]),
            index % 100
        ),
        "Macintosh" => format!("MacBook-de-{}-{index}", rng.pick(PEOPLE)),
        "Switch" => format!("SW-{}-{index:03}", rng.pick(&["CORE", "ACCESS", "DIST"])),
        "Router" => format!("RTR-{}-{index:03}", rng.pick(CITIES).to_uppercase()),
        "Firewall" => format!("FW-{}-{index:03}", rng.pick(CITIES)),
        "Printer" => format!(
            "{}-Drucker-{index}",
            rng.pick(&["Büro", "Lager", "Empfang"])
        ),
        "NAS" => format!("東京-NAS-{index}"),
        "OT" => format!(
            "{}.{}.{}.{}/1/{}",
            160 + rng.below(20),
            rng.below(255),
            rng.below(255),
            rng.below(255),
            rng.below(9)
        ),
        "Mobile" => format!("{}'s iPhone", rng.pick(PEOPLE)),
        _ => format!("pi-sensor-{index}"),
    }
}

fn mac(rng: &mut Rng) -> Option<String> {
    let octets: Vec<String> = (0..6).map(|_| rng.hex(2)).collect();
    let joined = octets.concat();
    let text = match rng.below(20) {
        0 => return None,
        1..=8 => octets.join(":").to_uppercase(),
        9..=11 => octets.join(":"),
        12..=14 => octets.join("-").to_uppercase(),
        15 => octets.join("-"),
        16..=17 => format!("{}.{}.{}", &joined[0..4], &joined[4..8], &joined[8..12]),
        18 => joined.to_uppercase(),
        _ => joined,
    };
    Some(text)
}

fn asset(rng: &mut Rng, kind: &Kind, name: &str) -> Value {
    let key = rng.uuid();
    let manufacturer = if rng.chance(3) {
        *rng.pick(NEW_MANUFACTURERS)
    } else {
        *rng.pick(kind.manufacturers)
    };
    let serial = if rng.chance(8) {
        (*rng.pick(PLACEHOLDER_SERIALS)).to_string()
    } else {
        rng.alnum_upper(10)
    };
    let location = if rng.chance(4) {
        // Sites ConnectWise has no location for yet.
        format!("{} Pop-up Store", rng.pick(CITIES))
    } else {
        format!("{} {}", rng.pick(CITIES), rng.pick(SITE_KINDS))
    };
    let mut basic = json!({
        "name": name,
        "type": kind.asset_type,
        "firstSeen": format!("2023-{:02}-{:02}T08:00:00Z", 1 + rng.below(12), 1 + rng.below(28)),
        "lastSeen": format!("2026-{:02}-{:02}T08:00:00Z", 1 + rng.below(11), 1 + rng.below(28)),
    });
    if let Some(mac) = mac(rng) {
        basic["mac"] = json!(mac);
    }
    if !rng.chance(5) {
        basic["ipAddress"] = json!(format!(
            "10.{}.{}.{}",
            rng.below(255),
            rng.below(255),
            1 + rng.below(253)
        ));
    }
    let mut custom = json!({
        "manufacturer": manufacturer,
        "serialNumber": serial,
        "stateName": *rng.pick(STATES),
        "location": location,
    });
    if !rng.chance(6) {
        custom["model"] = json!(*rng.pick(kind.models));
    }
    if rng.chance(70) {
        custom["warrantyDate"] = json!(format!(
            "20{:02}-{:02}-{:02}T00:00:00Z",
            24 + rng.below(6),
            1 + rng.below(12),
            1 + rng.below(28)
        ));
    }
    let mut asset = json!({
        "key": key,
        "url": format!("https://app.lansweeper.com/{SITE_NAME}/asset/{key}/summary"),
        "assetBasicInfo": basic,
        "assetCustom": custom,
    });
    if !kind.os.is_empty() {
        asset["operatingSystem"] = json!({"caption": *rng.pick(kind.os), "version": format!("{}.{}", 10 + rng.below(5), rng.below(30))});
    }
    if !kind.os.is_empty() {
        let count = if rng.chance(2) {
            300 + rng.below(200)
        } else {
            3 + rng.below(30)
        };
        let software: Vec<Value> = (0..count)
            .map(|i| {
                let (name, publisher) = SOFTWARE[i % SOFTWARE.len()];
                let name = if i < SOFTWARE.len() { name.to_string() } else { format!("{name} component {i}") };
                json!({"name": name, "version": format!("{}.{}.{}", 1 + rng.below(20), rng.below(10), rng.below(1000)), "publisher": publisher})
            })
            .collect();
        asset["softwares"] = Value::Array(software);
    }
    asset
}
