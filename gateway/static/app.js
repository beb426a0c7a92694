/* Diandian pages: the little JavaScript the guest flow needs, served by the gateway itself.
 * Every form talks to this origin's /api/v1 with fetch; pages carry what the script needs
 * (ids, translated messages) in data-* attributes, so there is no inline script. */
(function () {
  "use strict";

  var lang = document.documentElement.lang || "zh-CN";

  function api(method, path, body, headers) {
    var options = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    Object.keys(headers || {}).forEach(function (name) { options.headers[name] = headers[name]; });
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (json) {
        return { status: response.status, body: json };
      });
    });
  }

  function randomKey() {
    // Not crypto.randomUUID: that needs a secure context, and venues often serve plain http.
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function formatNumber(value) {
    return Number(value).toLocaleString(lang);
  }

  function busy(button, on) {
    if (!button) { return; }
    button.disabled = on;
    if (on) { button.setAttribute("aria-busy", "true"); } else { button.removeAttribute("aria-busy"); }
  }

  // --- field errors ------------------------------------------------------------------
  function errorElement(input) {
    var ids = (input.getAttribute("aria-describedby") || "").split(/\s+/);
    for (var i = 0; i < ids.length; i++) {
      if (/-error$/.test(ids[i])) { return document.getElementById(ids[i]); }
    }
    return null;
  }

  function markInvalid(input, messages) {
    input.setAttribute("aria-invalid", "true");
    var element = errorElement(input);
    if (element) {
      element.textContent = [].concat(messages).join(" ");
      element.hidden = false;
    }
  }

  function clearErrors(form) {
    form.querySelectorAll("[aria-invalid]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
      var element = errorElement(input);
      if (element) { element.hidden = true; element.textContent = ""; }
    });
    var formError = form.querySelector(".form-error");
    if (formError) { formError.hidden = true; formError.textContent = ""; }
  }

  function showFormError(form, message) {
    var element = form.querySelector(".form-error");
    element.textContent = message;
    element.hidden = false;
  }

  function focusFirstInvalid(form) {
    var first = form.querySelector("[aria-invalid='true']");
    if (first) {
      for (var details = first.closest("details"); details; details = details.parentElement.closest("details")) {
        details.open = true;
      }
      first.focus();
    }
  }

  function flattenMessages(value) {
    if (Array.isArray(value)) { return value.join(" "); }
    if (value && typeof value === "object") {
      return Object.keys(value).map(function (k) { return flattenMessages(value[k]); }).join(" ");
    }
    return String(value);
  }

  // --- estimate forms (scene trip form and life footprint) -----------------------------
  function readValue(input) {
    var kind = input.dataset.kind;
    if (input.type === "checkbox") { return input.checked; }
    var raw = input.value.trim();
    if (raw === "") { return null; }
    if (kind === "number") { return Number(raw); }
    if (kind === "int") { return parseInt(raw, 10); }
    if (kind === "bool") { return raw === "true"; }
    if (kind === "upper") { return raw.toUpperCase(); }
    return raw;
  }

  function readActivities(form) {
    var activities = [];
    var sources = [];
    form.querySelectorAll("fieldset[data-activity]").forEach(function (fieldset) {
      var inputs = fieldset.querySelectorAll("[data-field]");
      var filled = Array.prototype.some.call(inputs, function (input) {
        var value = input.hasAttribute("data-primary") ? readValue(input) : null;
        return value !== null && value !== "" && value !== 0;
      });
      if (!filled) { return; }
      var activity = { type: fieldset.dataset.activity };
      var copies = 1;
      inputs.forEach(function (input) {
        var value = readValue(input);
        if (input.hasAttribute("data-repeat")) { copies = value || 0; return; }
        if (value !== null) { activity[input.dataset.field] = value; }
      });
      for (var i = 0; i < copies; i++) {
        activities.push(activity);
        sources.push(fieldset);
      }
    });
    return { activities: activities, sources: sources };
  }

  function showEstimateErrors(form, fields, sources) {
    var activityErrors = (fields && fields.activities) || {};
    var shown = false;
    if (Array.isArray(activityErrors)) {
      showFormError(form, flattenMessages(activityErrors));
      return true;
    }
    Object.keys(activityErrors).forEach(function (index) {
      var fieldset = sources[Number(index)];
      var errors = activityErrors[index];
      if (!fieldset || typeof errors !== "object") { return; }
      Object.keys(errors).forEach(function (name) {
        var input = fieldset.querySelector("[data-field='" + name + "']:not([type='hidden'])") ||
          fieldset.querySelector("[data-primary]");
        if (input) { markInvalid(input, errors[name]); shown = true; }
      });
    });
    return shown;
  }

  document.querySelectorAll("form.js-estimate").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(form);
      var read = readActivities(form);
      if (!read.activities.length) {
        showFormError(form, form.dataset.emptyMessage);
        return;
      }
      // No participant id: the gateway knows the guest by their cookie.
      var body = { kind: form.dataset.kind, activities: read.activities };
      if (form.dataset.scene) { body.scene = form.dataset.scene; }
      var button = form.querySelector("button[type='submit']");
      busy(button, true);
      api("POST", "/api/v1/estimates", body).then(function (reply) {
        if (reply.status === 201 && reply.body && reply.body.id) {
          window.location.assign("/e/" + encodeURIComponent(reply.body.id));
          return;
        }
        busy(button, false);
        var fields = reply.body && reply.body.error && reply.body.error.fields;
        if (reply.status === 422 && showEstimateErrors(form, fields, read.sources)) {
          showFormError(form, form.dataset.invalidMessage);
          focusFirstInvalid(form);
        } else {
          showFormError(form, form.dataset.failedMessage);
        }
      }, function () {
        busy(button, false);
        showFormError(form, form.dataset.failedMessage);
      });
    });
  });

  // --- order form -----------------------------------------------------------------------
  function remembered(input) {
    try { return window.localStorage.getItem("dd:" + input.dataset.remember) || ""; } catch (e) { return ""; }
  }

  function remember(input) {
    try { window.localStorage.setItem("dd:" + input.dataset.remember, input.value.trim()); } catch (e) { /* private mode */ }
  }

  document.querySelectorAll("form.js-order").forEach(function (form) {
    var attempt = { body: null, key: null };
    form.querySelectorAll("[data-remember]").forEach(function (input) {
      if (!input.value) { input.value = remembered(input); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(form);
      var project = form.querySelector("input[name='project_id']:checked");
      var name = form.querySelector("#display-name");
      var organization = form.querySelector("#organization");
      // No participant id: the gateway knows the guest by their cookie.
      var participant = { display_name: name.value.trim() };
      if (organization.value.trim()) { participant.organization = organization.value.trim(); }
      var body = { project_id: project ? project.value : "", estimate_id: form.dataset.estimate, participant: participant };
      if (form.dataset.scene) { body.scene = form.dataset.scene; }
      var text = JSON.stringify(body);
      // One key per attempt: a retry of the same order after a lost answer reuses it, so
      // the orders service returns the order it made instead of making a second one.
      if (text !== attempt.body) { attempt = { body: text, key: randomKey() }; }
      var button = form.querySelector("button[type='submit']");
      busy(button, true);
      api("POST", "/api/v1/orders", text, { "Idempotency-Key": attempt.key }).then(function (reply) {
        if ((reply.status === 201 || reply.status === 200) && reply.body && reply.body.id) {
          form.querySelectorAll("[data-remember]").forEach(remember);
          window.location.assign("/pay/" + encodeURIComponent(reply.body.id));
          return;
        }
        busy(button, false);
        attempt = { body: null, key: null };  // answered: a new try is a new attempt
        var error = (reply.body && reply.body.error) || {};
        if (error.code === "insufficient_credits") {
          showFormError(form, form.dataset.insufficientMessage);
        } else if (reply.status === 422 && error.fields) {
          var fields = error.fields.participant || {};
          if (fields.display_name) { markInvalid(name, fields.display_name); }
          if (fields.organization) { markInvalid(organization, fields.organization); }
          showFormError(form, form.dataset.invalidMessage + (fields.display_name || fields.organization ? "" : " " + flattenMessages(error.fields)));
          focusFirstInvalid(form);
        } else {
          showFormError(form, form.dataset.failedMessage);
        }
      }, function () {
        busy(button, false);
        showFormError(form, form.dataset.failedMessage);
      });
    });
  });

  // --- payment and progress ---------------------------------------------------------------
  var STEPS = ["paid", "retired", "completed"];

  document.querySelectorAll(".js-pay").forEach(function (root) {
    var orderId = root.dataset.order;
    var progress = root.querySelector(".progress");
    var labels = root.querySelector(".js-state-labels").dataset;
    var started = Date.now();
    var timer = null;

    function render(order) {
      var done = STEPS.indexOf(order.status) + 1;
      root.querySelectorAll("ol.steps li").forEach(function (li, index) {
        li.className = index < done ? "done" : (index === done ? "current" : "");
        li.querySelector(".step-state").textContent = index < done ? labels.done : (index === done ? labels.current : "");
      });
      if (order.retirement && order.retirement.serial_range) {
        root.querySelector(".serial-range").textContent = order.retirement.serial_range;
        root.querySelector(".serials").hidden = false;
      }
      var options = root.querySelector(".js-pay-options");
      if (options && order.status && order.status !== "pending_payment") { options.hidden = true; }
      if (order.status === "completed" && order.certificate) {
        var box = root.querySelector(".certificate-link");
        var link = box.querySelector("a");
        link.href = link.dataset.hrefTemplate.replace("CERT", encodeURIComponent(order.certificate.id));
        var wasHidden = box.hidden;
        box.hidden = false;
        if (wasHidden) { link.focus(); }
      }
    }

    function poll() {
      api("GET", "/api/v1/orders/" + encodeURIComponent(orderId)).then(function (reply) {
        var order = reply.body || {};
        if (reply.status === 200) { render(order); }
        if (order.status === "completed") { return; }
        if (order.status === "cancelled" || order.status === "failed") {
          var stopped = root.querySelector(".slow");
          stopped.textContent = order.status === "cancelled" ? root.dataset.cancelledMessage : root.dataset.refundedMessage;
          stopped.hidden = false;
          return;
        }
        var waited = Date.now() - started;
        if (waited > 120000) {
          var note = root.querySelector(".slow");
          note.textContent = root.dataset.slowMessage;
          note.hidden = false;
        }
        timer = window.setTimeout(poll, waited < 30000 ? 1000 : 4000);
      }, function () {
        timer = window.setTimeout(poll, 3000);
      });
    }

    var button = root.querySelector(".js-pay-button");
    if (button) {
      button.addEventListener("click", function () {
        var error = root.querySelector(".pay-action .form-error");
        error.hidden = true;
        busy(button, true);
        api("POST", "/api/v1/orders/" + encodeURIComponent(orderId) + "/payment", {}).then(function (reply) {
          if (reply.status === 202) {
            root.querySelector(".pay-action").hidden = true;
            progress.hidden = false;
            render({ status: (reply.body && reply.body.status) || "paid" });
            progress.querySelector("h2").setAttribute("tabindex", "-1");
            progress.querySelector("h2").focus();
            started = Date.now();
            poll();
            return;
          }
          busy(button, false);
          var message = reply.body && reply.body.error && reply.body.error.message;
          error.textContent = root.dataset.failedMessage + (message ? " (" + message + ")" : "");
          error.hidden = false;
        }, function () {
          busy(button, false);
          error.textContent = root.dataset.failedMessage;
          error.hidden = false;
        });
      });
    }
    // Inside WeChat: WeChat Pay JSAPI with the parameters the page got at checkout. The
    // provider's notification confirms the order; polling shows it.
    var jsapi = root.querySelector(".js-jsapi-button");
    if (jsapi) {
      jsapi.addEventListener("click", function () {
        var error = jsapi.parentElement.querySelector(".form-error");
        error.hidden = true;
        function invoke() {
          busy(jsapi, true);
          window.WeixinJSBridge.invoke("getBrandWCPayRequest", JSON.parse(jsapi.dataset.jsapi), function (res) {
            busy(jsapi, false);
            if (res && res.err_msg === "get_brand_wcpay_request:ok") {
              jsapi.hidden = true;
              progress.querySelector("h2").setAttribute("tabindex", "-1");
              progress.querySelector("h2").focus();
              return;
            }
            error.textContent = jsapi.dataset.cancelledMessage;
            error.hidden = false;
          });
        }
        if (window.WeixinJSBridge) {
          invoke();
        } else if (/MicroMessenger/.test(navigator.userAgent)) {
          document.addEventListener("WeixinJSBridgeReady", invoke, { once: true });
        } else {
          error.textContent = jsapi.dataset.unavailableMessage;
          error.hidden = false;
        }
      });
    }
    // Sandbox orders wait for the button; another provider confirms by its own webhook.
    if (["paid", "retired"].indexOf(root.dataset.status) >= 0 ||
        (root.dataset.status === "pending_payment" && root.dataset.provider !== "sandbox")) { poll(); }
    window.addEventListener("pagehide", function () { window.clearTimeout(timer); });
  });

  // --- sharing ----------------------------------------------------------------------------
  document.querySelectorAll(".js-share").forEach(function (button) {
    var status = document.querySelector(".share-status");
    var field = document.getElementById("share-url");

    function say(message) { if (status) { status.textContent = message; } }

    function copyFallback() {
      field.focus();
      field.select();
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      say(copied ? button.dataset.copiedMessage : button.dataset.copyFailedMessage);
    }

    button.addEventListener("click", function () {
      var data = { title: button.dataset.title, text: button.dataset.text, url: button.dataset.url };
      if (navigator.share) {
        navigator.share(data).catch(function (error) {
          if (!error || error.name !== "AbortError") { copyFallback(); }
        });
      } else if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(data.url).then(function () { say(button.dataset.copiedMessage); }, copyFallback);
      } else {
        copyFallback();
      }
    });
  });

  // --- the certificate's share card (issue 21) -----------------------------------------------
  // The phone's share sheet with the card image where the browser can share files, else the
  // link and title, else (WeChat's browser has no Web Share API) the card full-screen with
  // the long-press hint. The image is fetched on load: a share must start within the tap.
  document.querySelectorAll(".js-share-card").forEach(function (button) {
    var viewer = document.querySelector(".card-viewer");
    var status = document.querySelector(".share-status");
    var field = document.getElementById("share-url");
    var cardFile = null;

    function say(message) { if (status) { status.textContent = message; } }

    function openViewer() {
      if (!viewer) { return false; }
      viewer.hidden = false;
      var close = viewer.querySelector(".js-card-viewer-close");
      if (close) { close.focus(); }
      return true;
    }

    function copyLink() {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(button.dataset.url).then(function () { say(button.dataset.copiedMessage); },
          function () { say(button.dataset.copyFailedMessage); });
        return;
      }
      if (field) { field.focus(); field.select(); }
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      say(copied ? button.dataset.copiedMessage : button.dataset.copyFailedMessage);
    }

    if (button.dataset.card && navigator.canShare && window.File) {
      fetch(button.dataset.card, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.blob() : null; })
        .then(function (blob) {
          if (!blob) { return; }
          var file = new File([blob], button.dataset.cardName || "diandian.png", { type: "image/png" });
          if (navigator.canShare({ files: [file] })) { cardFile = file; }
        })
        .catch(function () { /* the link is shared instead */ });
    }

    if (viewer) {
      viewer.querySelector(".js-card-viewer-close").addEventListener("click", function () {
        viewer.hidden = true;
        button.focus();
      });
      viewer.addEventListener("keydown", function (event) {
        if (event.key === "Escape") { viewer.hidden = true; button.focus(); }
      });
    }

    button.addEventListener("click", function () {
      var data = { title: button.dataset.title, text: button.dataset.text, url: button.dataset.url };
      var failed = function (error) {
        if (!error || error.name !== "AbortError") { if (!openViewer()) { copyLink(); } }
      };
      if (cardFile) {
        navigator.share({ files: [cardFile], title: data.title, text: data.text }).catch(failed);
      } else if (navigator.share) {
        navigator.share(data).catch(failed);
      } else if (!openViewer()) {
        copyLink();
      }
    });
  });

  // --- a rank that is still being counted -------------------------------------------------
  document.querySelectorAll(".js-rank-wait").forEach(function (element) {
    var tries = 0;
    var path = "/api/v1/rankings/participants/" + encodeURIComponent(element.dataset.participant) +
      (element.dataset.scene ? "?scene=" + encodeURIComponent(element.dataset.scene) : "");
    function check() {
      tries += 1;
      api("GET", path).then(function (reply) {
        if (reply.status === 200 && reply.body) {
          element.textContent = element.dataset.template
            .replace("{rank}", formatNumber(reply.body.rank))
            .replace("{total}", formatNumber(reply.body.total));
        } else if (tries < 15) {
          window.setTimeout(check, 2000);
        }
      }, function () { if (tries < 15) { window.setTimeout(check, 2000); } });
    }
    check();
  });

  // --- operator dashboard: reload the live panel -------------------------------------------
  document.querySelectorAll(".js-refresh").forEach(function (panel) {
    var seconds = Number(panel.dataset.seconds) || 10;
    window.setInterval(function () {
      if (document.hidden) { return; }
      fetch(panel.dataset.url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          // Sent to the login (the session ended): show that page whole, not inside the panel.
          if (response.redirected) { window.location.reload(); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) { if (html !== null) { panel.innerHTML = html; } })
        .catch(function () { /* keep the last figures; the next tick tries again */ });
    }, seconds * 1000);
  });

  // --- projector screen: the Fullscreen API, where the browser offers it ---------------------
  document.querySelectorAll(".js-fullscreen").forEach(function (button) {
    var root = document.documentElement;
    if (!document.fullscreenEnabled || !root.requestFullscreen) { return; }  // the button stays hidden
    function label() {
      button.textContent = document.fullscreenElement ? button.dataset.leaveLabel : button.dataset.enterLabel;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = document.fullscreenElement ? document.exitFullscreen() : root.requestFullscreen();
      if (done && done.catch) { done.catch(function () { /* refused (no user gesture, a policy): stay as is */ }); }
    });
    document.addEventListener("fullscreenchange", label);
  });
})();
