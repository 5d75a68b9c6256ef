/* Live regions (issue 8). Elements with data-live-src are fetched again, and swapped in place, whenever the event
   stream named by the page's data-live-stream element sends `change` (web/live.py). No framework, no inline code
   (the pages' CSP runs scripts from this origin only).
   - A region whose form field holds the keyboard focus waits until focus leaves it: a half-filled form is never
     replaced under the user's hands. Elsewhere focus and scroll position survive the swap.
   - A region with aria-live announces itself; the others (long lists a screen reader would read out again) are
     named in the page's data-live-status line instead.
   - Identical content is not swapped, so nothing is announced when a change did not touch a region. */
(function () {
  "use strict";

  var FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]";

  function utcClock() {
    return new Date().toISOString().slice(11, 16);
  }

  function normalised(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    return holder.innerHTML.trim();
  }

  function editing(region) {
    var active = document.activeElement;
    return Boolean(active && region.contains(active) && active.matches("input, select, textarea"));
  }

  function swap(region, html) {
    var active = document.activeElement;
    var inside = active && active !== region && region.contains(active);
    var focusId = inside ? active.id : "";
    var focusIndex = inside ? Array.prototype.indexOf.call(region.querySelectorAll(FOCUSABLE), active) : -1;
    var x = window.scrollX;
    var y = window.scrollY;
    region.innerHTML = html;
    if (inside) {
      var again = (focusId && document.getElementById(focusId)) || region.querySelectorAll(FOCUSABLE)[focusIndex];
      if (again) {
        again.focus({preventScroll: true});
      }
    }
    window.scrollTo(x, y);
  }

  function start() {
    var host = document.querySelector("[data-live-stream]");
    var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live-src]"));
    if (!host || !regions.length || !window.EventSource || !window.fetch) {
      return;
    }
    var status = document.querySelector("[data-live-status]");
    var held = new Map(); // region -> html waiting for focus to leave it
    var busy = false;
    var again = false;
    var source = new EventSource(host.getAttribute("data-live-stream"));

    function say(text) {
      if (status) {
        status.textContent = text;
      }
    }

    function apply(region, html) {
      swap(region, html);
      return region.getAttribute("aria-live") ? null : region.getAttribute("data-live-label");
    }

    function announce(labels) {
      var named = labels.filter(Boolean);
      var clock = utcClock();
      document.querySelectorAll("[data-live-time]").forEach(function (el) { el.textContent = clock; });
      if (named.length) {
        say("Updated " + named.join(" and ") + " at " + clock + " UTC.");
      }
    }

    function fetchRegion(region) {
      return fetch(region.getAttribute("data-live-src"), {
        credentials: "same-origin", cache: "no-store", headers: {Accept: "text/html"}
      }).then(function (response) {
        if (response.redirected && new URL(response.url).pathname === "/login") {
          // Signed out meanwhile: the page itself goes to the sign-in form, which brings the user back here.
          source.close();
          window.location.reload();
          return null;
        }
        if (!response.ok) {
          return null; // a failed round is retried on the next change
        }
        return response.text().then(function (html) {
          if (normalised(html) === region.innerHTML.trim()) {
            return null;
          }
          if (editing(region)) {
            held.set(region, html);
            return null;
          }
          held.delete(region);
          return apply(region, html) || "";
        });
      }).catch(function () { return null; });
    }

    function refresh() {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      again = false;
      Promise.all(regions.map(fetchRegion)).then(function (results) {
        var changed = results.filter(function (r) { return r !== null; });
        if (changed.length) {
          announce(changed);
        }
      }).finally(function () {
        busy = false;
        if (again) {
          refresh();
        }
      });
    }

    regions.forEach(function (region) {
      region.addEventListener("focusout", function () {
        // After the focus has moved: only then is it known whether it left the region.
        window.setTimeout(function () {
          if (held.has(region) && !editing(region)) {
            var html = held.get(region);
            held.delete(region);
            announce([apply(region, html)]);
          }
        }, 0);
      });
    });
    source.addEventListener("change", refresh);
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        say("Live updates stopped: reload the page to resume them.");
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
