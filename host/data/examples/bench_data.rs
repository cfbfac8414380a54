//! Data-loading speed: images per second through `ImageFolder` + the tutorial's CIFAR-10
//! training augmentation + `DataLoader`, with 0, 1 and 2 workers.
//!
//! The same work as `tools/bench_data_torchvision.py` on the same files (every
//! `len / images`-th image of the sorted folder): decode each JPEG, `RandomCrop(32, padding=4)`,
//! `RandomHorizontalFlip()`, `ToTensor()`, `Normalize(mean, std)`, batches of 64, shuffled.
//! `tools/bench-data.sh` extracts the shared CIFAR-10 JPEGs and runs both.
//!
//! ```text
//! cargo run --release -p torchlet-data --example bench_data -- path/to/train [--images 10000] [--workers 0,1,2]
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use torchlet_data::image_folder::ImageFolder;
use torchlet_data::loader::DataLoader;
use torchlet_data::transforms::{
    Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToTensor, Transform, Transformed,
};
use torchlet_data::{Dataset, Subset};

const MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
const STD: [f32; 3] = [0.2470, 0.2435, 0.2616];
const USAGE: &str = "usage: bench_data ROOT [--images N] [--workers 0,1,2] [--batch-size 64]";

fn main() -> Result<(), Box<dyn Error>> {
    let (mut root, mut images, mut workers, mut batch_size) = (None, 10_000usize, vec![0usize, 1, 2], 64usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--images" => images = value()?.parse()?,
            "--batch-size" => batch_size = value()?.parse()?,
            "--workers" => workers = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ if root.is_none() && !arg.starts_with('-') => root = Some(arg),
            _ => return Err(format!("unexpected argument {arg}\n{USAGE}").into()),
        }
    }
    let root = root.ok_or(USAGE)?;

    // The same images as the torchvision script: every `stride`-th of the sorted folder.
    let full = ImageFolder::new(&root)?;
    let stride = (full.len() / images.max(1)).max(1);
    let indices: Vec<usize> = (0..full.len()).step_by(stride).take(images).collect();
    let train = Compose::new(vec![
        RandomCrop::new(32).padding(4).boxed(),
        RandomHorizontalFlip::new().boxed(),
        ToTensor.boxed(),
        Normalize::new(MEAN, STD).boxed(),
    ]);
    let total = full.len();
    let dataset = Arc::new(Transformed::new(Subset::new(full, indices)?).transform(train));

    println!(
        "torchlet: {} images of {total}, batch {batch_size}, shuffle",
        dataset.len()
    );
    println!("{:>8} {:>9} {:>10}", "workers", "seconds", "images/s");
    for w in workers {
        let loader = DataLoader::from_arc(Arc::clone(&dataset))
            .batch_size(batch_size)
            .shuffle(true)
            .num_workers(w)
            .seed(0);
        let start = Instant::now();
        let mut seen = 0;
        let mut epoch = loader.epoch(0)?;
        while let Some(batch) = epoch.next() {
            let batch = batch?;
            assert_eq!(batch.shape[1..], [3, 32, 32]);
            seen += batch.len();
            epoch.recycle(batch);
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(seen, dataset.len());
        println!("{w:>8} {secs:>9.3} {:>10.0}", seen as f64 / secs);
        println!("RESULT {w} {:.1}", seen as f64 / secs);
    }
    Ok(())
}
