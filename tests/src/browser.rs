//! Headless Chromium (Debian's `chromium` package) driven over the DevTools
//! protocol, for the scenarios that check what people see: the dashboard
//! and the operator's station.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::ScreenshotParams;
use futures::StreamExt;

use crate::wait_until;

/// A browser and the task that drives its events (abort it at the end).
pub struct Chromium {
    pub browser: Browser,
    pub events: tokio::task::JoinHandle<()>,
}

/// Starts a throwaway headless Chromium with a window of `w` × `h`.
pub async fn launch(w: u32, h: u32) -> Chromium {
    let exe = std::env::var("REKAP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let config = BrowserConfig::builder()
        .chrome_executable(exe)
        .no_sandbox()
        // The nodes' certificates come from the test CA, which this
        // throwaway browser profile does not hold.
        .arg("ignore-certificate-errors")
        .window_size(w, h)
        .build()
        .expect("browser config");
    let (browser, mut handler) = Browser::launch(config)
        .await
        .expect("headless chromium starts (Debian's chromium package; tests/run.sh installs it)");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    Chromium { browser, events }
}

impl Chromium {
    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        self.events.abort();
    }
}

/// A whole-page screenshot, `<dir>/<name>.png` (a scenario passes a folder
/// under its `CARGO_TARGET_TMPDIR`).
pub async fn shot(page: &Page, dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("screenshot folder");
    let path = dir.join(format!("{name}.png"));
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
        .await
        .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    eprintln!("screenshot: {}", path.display());
    path
}

/// The text of the first element matching `css` ("" when there is none).
pub async fn text(page: &Page, css: &str) -> String {
    eval(
        page,
        &format!("document.querySelector({css:?})?.textContent ?? ''"),
    )
    .await
}

/// The same, or `None` while the page is between documents (a wait loop
/// polls through a navigation).
pub async fn try_text(page: &Page, css: &str) -> Option<String> {
    let js = format!("document.querySelector({css:?})?.textContent ?? ''");
    page.evaluate(js).await.ok()?.into_value::<String>().ok()
}

/// Evaluates `js` in the page and returns its value.
pub async fn eval<T: serde::de::DeserializeOwned>(page: &Page, js: &str) -> T {
    page.evaluate(js.to_string())
        .await
        .unwrap_or_else(|e| panic!("evaluating {js}: {e}"))
        .into_value::<T>()
        .unwrap_or_else(|e| panic!("the value of {js}: {e}"))
}

/// Goes to `url` and waits for it to load.
pub async fn open(page: &Page, url: String) {
    page.goto(&url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    page.wait_for_navigation().await.expect("loads");
}

/// Waits until the page at `href` has loaded (after a click or a post).
pub async fn loaded(page: &Page, href: &str) {
    wait_until(
        &format!("the page at {href}"),
        Duration::from_secs(10),
        || async {
            let done: bool = page
                .evaluate(format!(
                    "location.href.startsWith({href:?}) && document.readyState === 'complete'"
                ))
                .await
                .ok()?
                .into_value()
                .ok()?;
            done.then_some(())
        },
    )
    .await;
}

/// Clicks the link `css` and waits until the page it leads to has loaded.
pub async fn follow(page: &Page, css: &str) {
    let link = page
        .find_element(css)
        .await
        .unwrap_or_else(|e| panic!("no link {css}: {e}"));
    let href = link
        .property("href")
        .await
        .expect("href")
        .and_then(|v| v.as_str().map(String::from))
        .expect("a link has an href");
    link.click().await.expect("click");
    loaded(page, &href).await;
}
