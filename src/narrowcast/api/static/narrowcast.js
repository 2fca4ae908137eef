/*! narrowcast web messages — no dependencies, no build step.
 *
 * The shop includes it once per page:
 *   <script src="https://API/v1/narrowcast.js" data-customer-token="…" async></script>
 * (data-customer-token only when the shop's backend knows who is logged in).
 *
 * It keeps an anonymous visitor id (first-party cookie nc_vid, localStorage as
 * a fallback), tells a new visitor from a returning one (a visitor is new for
 * their whole first session), classifies document.referrer as search, social,
 * email or direct, asks the API which messages fit this visit, shows them
 * (banner, modal, toast; an NPS survey when asked) and reports seen, click,
 * dismiss and answer. Message text only ever goes in through textContent.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.narrowcast) return;

  var API = script.src.replace(/\/narrowcast\.js(?:[?#].*)?$/, "");
  var TOKEN = script.getAttribute("data-customer-token") || "";
  var VID = "nc_vid";
  var YEAR = 365 * 24 * 3600;

  var SEARCH = [
    "bing.com", "duckduckgo.com", "search.yahoo.com", "yandex.ru", "yandex.com",
    "baidu.com", "ecosia.org", "search.brave.com", "qwant.com", "startpage.com",
    "naver.com", "seznam.cz", "ask.com", "aol.com", "yahoo.com"
  ];
  var SOCIAL = [
    "facebook.com", "fb.com", "fb.me", "instagram.com", "twitter.com", "x.com", "t.co",
    "linkedin.com", "lnkd.in", "tiktok.com", "pinterest.com", "pin.it", "reddit.com",
    "youtube.com", "youtu.be", "snapchat.com", "threads.net", "bsky.app", "mastodon.social",
    "tumblr.com", "vk.com", "whatsapp.com", "wa.me", "telegram.org", "t.me"
  ];
  var WEBMAIL = [
    "mail.google.com", "outlook.live.com", "outlook.office.com", "outlook.office365.com",
    "mail.yahoo.com", "mail.aol.com", "mail.proton.me", "mail.protonmail.com",
    "mail.zoho.com", "mail.yandex.ru", "mail.yandex.com", "poczta.onet.pl",
    "poczta.wp.pl", "icloud.com"
  ];

  // --- the visit ---------------------------------------------------------------

  function readCookie(name) {
    var pairs = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < pairs.length; i++) {
      var at = pairs[i].indexOf("=");
      if (pairs[i].slice(0, at) === name) return decodeURIComponent(pairs[i].slice(at + 1));
    }
    return "";
  }

  function store(kind) {
    try { return window[kind]; } catch (e) { return null; }
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  }

  function validId(id) { return /^[A-Za-z0-9_-]{8,100}$/.test(id || ""); }

  function visitor() {
    var local = store("localStorage");
    var session = store("sessionStorage");
    var id = readCookie(VID);
    if (!validId(id) && local) id = local.getItem(VID) || "";
    var known = validId(id);
    if (!known) id = newId();
    document.cookie = VID + "=" + encodeURIComponent(id) + "; path=/; max-age=" + YEAR +
      "; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
    if (local) { try { local.setItem(VID, id); } catch (e) { /* full or blocked */ } }
    // Returning means "seen in an earlier session"; the first session stays new throughout.
    var returning = known;
    if (session) {
      var flag = session.getItem("nc_returning");
      if (flag === "0" || flag === "1") returning = flag === "1";
      else { try { session.setItem("nc_returning", known ? "1" : "0"); } catch (e) { /* */ } }
    }
    return { id: id, returning: returning };
  }

  function hostIn(host, list) {
    for (var i = 0; i < list.length; i++) {
      var d = list[i];
      if (host === d || host.slice(-(d.length + 1)) === "." + d) return true;
    }
    return false;
  }

  function baseHost(host) { return host.toLowerCase().replace(/^www\./, ""); }

  /** search | social | email | direct, from the referrer URL and this page's URL. */
  function classify(referrer, pageUrl) {
    var page;
    try { page = new URL(pageUrl); } catch (e) { return "direct"; }
    var medium = (page.searchParams.get("utm_medium") || "").toLowerCase();
    if (medium === "email" || medium === "e-mail" || medium === "newsletter") return "email";
    if (medium === "social" || medium === "social-network" || medium === "social-media") return "social";
    if (medium === "organic" || medium === "cpc" || medium === "ppc" || medium === "paidsearch") return "search";
    if (!referrer) return "direct";
    var host;
    try { host = baseHost(new URL(referrer).hostname); } catch (e) { return "direct"; }
    if (!host || host === baseHost(page.hostname)) return "direct";
    if (hostIn(host, WEBMAIL) || /^(webmail|mail)\./.test(host)) return "email";
    if (hostIn(host, SOCIAL)) return "social";
    if (/(^|\.)google\.[a-z]{2,3}(\.[a-z]{2})?$/.test(host) || hostIn(host, SEARCH)) return "search";
    return "direct";
  }

  function safeUrl(url) {
    if (typeof url !== "string") return null;
    try {
      var parsed = new URL(url, location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (e) { return null; }
  }

  // --- talking to the API ------------------------------------------------------

  function headers(json) {
    var h = {};
    if (json) h["Content-Type"] = "application/json";
    if (TOKEN) h.Authorization = "Bearer " + TOKEN;
    return h;
  }

  function report(message, action, extra) {
    var body = { visitor: state.visitor };
    for (var k in extra || {}) body[k] = extra[k];
    var url = API + "/web-messages/" + encodeURIComponent(message.id) + "/" + action;
    // keepalive: a click that leaves the page still gets reported.
    return fetch(url, {
      method: "POST", headers: headers(true), body: JSON.stringify(body),
      credentials: "omit", keepalive: true
    }).catch(function () { /* reporting never breaks the page */ });
  }

  function load() {
    var q = new URLSearchParams({
      visitor: state.visitor,
      returning: state.returning ? "true" : "false",
      referrer: state.referrer,
      path: location.pathname || "/"
    });
    return fetch(API + "/web-messages?" + q.toString(), {
      headers: headers(false), credentials: "omit"
    }).then(function (r) {
      if (!r.ok) throw new Error("narrowcast: web messages answered " + r.status);
      return r.json();
    });
  }

  // --- showing -------------------------------------------------------------------

  var STYLE =
    ".nc-msg{font:15px/1.4 system-ui,sans-serif;color:#1d1d1f;box-sizing:border-box;z-index:2147483000}" +
    ".nc-msg *{box-sizing:border-box}" +
    ".nc-banner{position:sticky;top:0;background:#fff7d6;border-bottom:1px solid #e0c96b;padding:10px 48px 10px 16px;display:flex;gap:12px;align-items:center;flex-wrap:wrap}" +
    ".nc-toast{position:fixed;right:16px;bottom:16px;max-width:360px;background:#fff;border:1px solid #ccc;border-radius:8px;box-shadow:0 4px 16px rgba(0,0,0,.2);padding:14px 44px 14px 16px}" +
    ".nc-backdrop{position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;align-items:center;justify-content:center;z-index:2147483000}" +
    ".nc-modal{position:relative;background:#fff;border-radius:10px;max-width:440px;width:calc(100% - 32px);padding:24px}" +
    ".nc-title{font-weight:700;margin:0}.nc-modal .nc-title{font-size:20px;margin-bottom:8px}" +
    ".nc-body{margin:0}.nc-image{max-width:100%;display:block;margin-bottom:8px}" +
    ".nc-cta{display:inline-block;background:#1d4ed8;color:#fff;text-decoration:none;padding:6px 14px;border-radius:6px;margin-top:8px}" +
    ".nc-close{position:absolute;top:6px;right:8px;border:0;background:transparent;font-size:22px;line-height:1;cursor:pointer;padding:4px 8px;color:inherit}" +
    ".nc-close:focus-visible,.nc-cta:focus-visible,.nc-score:focus-visible{outline:3px solid #1d4ed8;outline-offset:2px}" +
    ".nc-nps{display:flex;flex-wrap:wrap;gap:4px;margin-top:8px;border:0;padding:0}" +
    ".nc-nps legend{padding:0;margin-bottom:4px;font-size:13px}" +
    ".nc-score{min-width:34px;padding:6px;border:1px solid #999;border-radius:4px;background:#fff;cursor:pointer}" +
    ".nc-thanks{margin:8px 0 0}";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  function addStyle() {
    if (document.getElementById("nc-style")) return;
    var style = el("style");
    style.id = "nc-style";
    style.textContent = STYLE;
    // First in <head>, so the shop's own CSS wins where it sets the same things.
    document.head.insertBefore(style, document.head.firstChild);
  }

  function content(message, box) {
    var titleId = "nc-title-" + message.id;
    var bodyId = "nc-body-" + message.id;
    var image = safeUrl(message.image);
    if (image) {
      var img = el("img", "nc-image");
      img.src = image;
      img.alt = "";
      box.appendChild(img);
    }
    var title = el(message.placement === "modal" ? "h2" : "p", "nc-title", message.title);
    title.id = titleId;
    box.appendChild(title);
    if (message.body) {
      var body = el("p", "nc-body", message.body);
      body.id = bodyId;
      box.appendChild(body);
    }
    var href = safeUrl(message.cta_url);
    if (href && message.cta_label) {
      var cta = el("a", "nc-cta", message.cta_label);
      cta.href = href;
      cta.addEventListener("click", function () { report(message, "click"); });
      box.appendChild(cta);
    }
    if (message.survey === "nps") box.appendChild(survey(message, box));
    return { titleId: titleId, bodyId: message.body ? bodyId : null };
  }

  function survey(message, box) {
    var group = el("fieldset", "nc-nps");
    group.appendChild(el("legend", null, "0 = not at all likely, 10 = extremely likely"));
    for (var score = 0; score <= 10; score++) {
      var button = el("button", "nc-score", String(score));
      button.type = "button";
      button.setAttribute("aria-label", "Score " + score + " of 10");
      button.addEventListener("click", (function (s) {
        return function () {
          report(message, "answer", { score: s });
          var thanks = el("p", "nc-thanks", "Thank you!");
          thanks.setAttribute("role", "status");
          box.replaceChild(thanks, group);
          var close = box.querySelector(".nc-close");
          if (close) close.focus();
        };
      })(score));
      group.appendChild(button);
    }
    return group;
  }

  function closeButton(onClose) {
    var button = el("button", "nc-close", "\u00d7");
    button.type = "button";
    button.setAttribute("aria-label", "Dismiss");
    button.addEventListener("click", onClose);
    return button;
  }

  function show(message) {
    var root, box, ids, previous = document.activeElement, onKey = null;

    function dismiss() {
      if (onKey) document.removeEventListener("keydown", onKey, true);
      if (root.parentNode) root.parentNode.removeChild(root);
      if (message.placement === "modal" && previous && previous.focus) previous.focus();
      state.shown = state.shown.filter(function (m) { return m.id !== message.id; });
      state.pending.push(report(message, "dismiss"));
    }

    if (message.placement === "modal") {
      root = el("div", "nc-msg nc-backdrop");
      box = el("div", "nc-modal");
      box.setAttribute("role", "dialog");
      box.setAttribute("aria-modal", "true");
      box.tabIndex = -1;
      root.appendChild(box);
    } else {
      root = box = el("div", "nc-msg nc-" + message.placement);
      if (message.placement === "toast") {
        box.setAttribute("role", "status");
        box.setAttribute("aria-live", "polite");
      } else {
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", message.title);
      }
    }
    box.setAttribute("data-nc-message", String(message.id));
    var close = closeButton(dismiss);
    ids = content(message, box);
    box.appendChild(close);
    if (message.placement === "modal") {
      box.setAttribute("aria-labelledby", ids.titleId);
      if (ids.bodyId) box.setAttribute("aria-describedby", ids.bodyId);
      onKey = function (event) {
        if (event.key === "Escape") { event.preventDefault(); dismiss(); return; }
        if (event.key !== "Tab") return;
        // Keep focus inside the dialog while it is open.
        var focusable = box.querySelectorAll("a[href],button:not([disabled])");
        if (!focusable.length) return;
        var first = focusable[0], last = focusable[focusable.length - 1];
        if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
        else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
        else if (!box.contains(document.activeElement)) { event.preventDefault(); first.focus(); }
      };
      document.addEventListener("keydown", onKey, true);
    }
    if (message.placement === "banner") document.body.insertBefore(root, document.body.firstChild);
    else document.body.appendChild(root);
    if (message.placement === "modal") {
      var target = box.querySelector(".nc-cta,.nc-score") || close;
      target.focus();
    }
    state.shown.push(message);
    state.pending.push(report(message, "seen"));
  }

  // --- start -----------------------------------------------------------------

  var who = visitor();
  var state = {
    visitor: who.id,
    returning: who.returning,
    referrer: classify(document.referrer, location.href),
    status: "loading",
    messages: [],
    shown: [],
    pending: [],
    error: null
  };

  function start() {
    return load().then(function (data) {
      state.messages = data.messages || [];
      if (state.messages.length) addStyle();
      state.messages.forEach(show);
      state.status = "ready";
    }).catch(function (error) {
      state.status = "failed";
      state.error = String(error);
    });
  }

  var ready = new Promise(function (resolve) {
    function go() { start().then(resolve); }
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", go);
    else go();
  });

  window.narrowcast = {
    state: state,
    ready: ready,
    classify: classify,
    /** Resolves once every report sent so far has been answered. */
    settled: function () { return Promise.all(state.pending); }
  };
})();
