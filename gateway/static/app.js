/* Diandian pages: the little JavaScript the guest flow needs, served by the gateway itself.
 * Every form talks to this origin's /api/v1 with fetch; pages carry what the script needs
 * (ids, translated messages) in data-* attributes, so there is no inline script. */
(function () {
  "use strict";

  var lang = document.documentElement.lang || "zh-CN";

  function api(method, path, body, headers) {
    var options = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    // The API's error messages in the page's language (a page switched by the dd_lang cookie
    // may differ from the browser's own Accept-Language).
    options.headers["Accept-Language"] = lang;
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

  // A request that never reached us: the phone is offline (or its network dropped), as
  // opposed to a server that answered with an error. Said as such, and retried once online.
  function isOffline(error) {
    return navigator.onLine === false || error instanceof TypeError;
  }

  // ``retry`` once when the phone is back online; one retry per ``owner`` however often
  // it failed meanwhile (a form sent twice would make two estimates).
  function whenOnline(owner, retry) {
    if (owner.dataset.waitingOnline) { return; }
    owner.dataset.waitingOnline = "true";
    window.addEventListener("online", function () {
      delete owner.dataset.waitingOnline;
      retry();
    }, { once: true });
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
    if (kind === "airport") { return airportCode(raw) || raw; }
    return raw;
  }

  // An airport field holds a typed code ("ctu") or a chosen suggestion ("成都双流国际机场 (CTU)").
  function airportCode(raw) {
    var match = /^([A-Za-z]{3})$/.exec(raw) || /\(([A-Za-z]{3})\)$/.exec(raw);
    return match ? match[1].toUpperCase() : null;
  }

  // A section counts when it is open: a closed one was left out on purpose, even with the
  // defaults (one hotel night, the destination airport) it was given.
  function isOpen(element) {
    for (var details = element.closest("details"); details; details = details.parentElement.closest("details")) {
      if (!details.open) { return false; }
    }
    return true;
  }

  function readActivities(form) {
    var activities = [];
    var sources = [];
    form.querySelectorAll("fieldset[data-activity]").forEach(function (fieldset) {
      if (!isOpen(fieldset)) { return; }
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
      var unresolved = Array.prototype.filter.call(form.querySelectorAll("input[data-kind='airport']"), function (input) {
        return isOpen(input) && input.value.trim() !== "" && !airportCode(input.value.trim());
      });
      if (unresolved.length) {
        unresolved.forEach(function (input) { markInvalid(input, input.dataset.chooseMessage); });
        showFormError(form, form.dataset.invalidMessage);
        focusFirstInvalid(form);
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
      }, function (error) {
        busy(button, false);
        if (isOffline(error)) {
          showFormError(form, form.dataset.offlineMessage);
          whenOnline(form, function () { form.requestSubmit(); });
        } else {
          showFormError(form, form.dataset.failedMessage);
        }
      });
    });
  });

  // --- airport picker: an ARIA 1.2 combobox with a listbox of suggestions -----------------
  var zhPage = /^zh/i.test(lang);

  function airportLabel(airport) {
    var name = zhPage ? (airport.name_zh || airport.name) : (airport.name || airport.name_zh);
    return name + " (" + airport.iata + ")";
  }

  function airportPlace(airport) {
    var city = zhPage ? (airport.city_zh || airport.city) : (airport.city || airport.city_zh);
    return [city, airport.country].filter(Boolean).join(" · ");
  }

  document.querySelectorAll("input[data-kind='airport']").forEach(function (input) {
    var list = document.createElement("ul");
    var status = document.createElement("p");
    var label = document.querySelector("label[for='" + input.id + "']");
    var results = [];
    var active = -1;
    var timer = null;
    var asked = 0;
    list.id = input.id + "-listbox";
    list.className = "suggestions";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", label ? label.textContent.trim() : input.id);
    list.hidden = true;
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    input.insertAdjacentElement("afterend", list);
    list.insertAdjacentElement("afterend", status);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      active = index;
      list.querySelectorAll("[role='option']").forEach(function (option, i) {
        option.setAttribute("aria-selected", i === index ? "true" : "false");
      });
      if (index >= 0) {
        var option = document.getElementById(list.id + "-" + index);
        input.setAttribute("aria-activedescendant", option.id);
        option.scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(index) {
      var airport = results[index];
      if (!airport) { return; }
      input.value = airportLabel(airport);
      input.removeAttribute("aria-invalid");
      var error = errorElement(input);
      if (error) { error.hidden = true; error.textContent = ""; }
      close();
      input.dispatchEvent(new Event("change", { bubbles: true }));
      status.textContent = input.value;
    }

    function show(airports) {
      results = airports;
      list.textContent = "";
      airports.forEach(function (airport, index) {
        var option = document.createElement("li");
        var place = document.createElement("span");
        option.id = list.id + "-" + index;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.textContent = airportLabel(airport);
        place.className = "place";
        place.textContent = airportPlace(airport);
        option.appendChild(place);
        // Keep the focus in the field (a tap would blur it before the click).
        option.addEventListener("mousedown", function (event) { event.preventDefault(); });
        option.addEventListener("click", function () { choose(index); });
        list.appendChild(option);
      });
      active = -1;
      list.hidden = airports.length === 0;
      input.setAttribute("aria-expanded", airports.length ? "true" : "false");
      status.textContent = airports.length ?
        input.dataset.countMessage.replace("{count}", formatNumber(airports.length)) : input.dataset.noneMessage;
    }

    function search() {
      var query = input.value.trim();
      // One Chinese character names a city ("成"); Latin needs two letters to mean something.
      if (airportCode(query) && /\(/.test(query)) { close(); return; }
      if (query.length < 2 && !/[^\x00-\x7f]/.test(query)) { close(); results = []; return; }
      var mine = ++asked;
      api("GET", "/api/v1/airports?q=" + encodeURIComponent(query)).then(function (reply) {
        if (mine !== asked || document.activeElement !== input) { return; }  // a newer search, or gone
        show(reply.status === 200 && Array.isArray(reply.body) ? reply.body.slice(0, 8) : []);
      }, function () {
        if (mine === asked) { close(); }  // a typed code still works without suggestions
      });
    }

    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(search, 200);
    });
    input.addEventListener("keydown", function (event) {
      var open = !list.hidden && results.length > 0;
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (!open && results.length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); }
        if (results.length) { highlight((active + 1) % results.length); }
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        if (open) { highlight(active <= 0 ? results.length - 1 : active - 1); }
      } else if (event.key === "Enter" && open && active >= 0) {
        event.preventDefault();  // choosing, not sending the form
        choose(active);
      } else if (event.key === "Escape" && open) {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", function () { window.setTimeout(close, 150); });
  });

  // --- steppers: − and + beside a count (hotel nights), so two nights is one tap ------------
  document.querySelectorAll(".stepper").forEach(function (stepper) {
    var input = stepper.querySelector("input");
    var label = document.querySelector("label[for='" + input.id + "']");
    // The focus stays on the button: say the new count, as a spin button would.
    var status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    stepper.insertAdjacentElement("afterend", status);
    stepper.querySelectorAll("button.step").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var min = input.min === "" ? -Infinity : Number(input.min);
        var max = input.max === "" ? Infinity : Number(input.max);
        var value = (parseInt(input.value, 10) || 0) + Number(button.dataset.step);
        input.value = String(Math.min(max, Math.max(min, value)));
        input.dispatchEvent(new Event("input", { bubbles: true }));
        status.textContent = (label ? label.textContent.trim() + " " : "") + formatNumber(input.value);
      });
    });
  });

  // --- sections keep what was filled in: after Back, the browser restores the values, not
  // which sections were open; open those holding anything other than what the page gave.
  function changed(control) {
    if (control.type === "checkbox") { return control.checked !== control.defaultChecked; }
    if (control.tagName === "SELECT") {
      return Array.prototype.some.call(control.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    return control.value !== control.defaultValue;
  }

  // What the guest filled in, kept for this tab: the airport fields say autocomplete="off"
  // (their suggestions, not the browser's), and the browser does not restore those on Back.
  function stateKey(form) { return "dd:form:" + window.location.pathname + ":" + form.dataset.kind; }

  function saveState(form) {
    var state = {};
    form.querySelectorAll("[data-field][id]").forEach(function (control) {
      state[control.id] = control.type === "checkbox" ? control.checked : control.value;
    });
    try { window.sessionStorage.setItem(stateKey(form), JSON.stringify(state)); } catch (e) { /* private mode */ }
  }

  function restoreState(form) {
    var state = null;
    try { state = JSON.parse(window.sessionStorage.getItem(stateKey(form)) || "null"); } catch (e) { state = null; }
    if (!state) { return; }
    Object.keys(state).forEach(function (id) {
      var control = document.getElementById(id);
      if (!control || !form.contains(control)) { return; }
      if (control.type === "checkbox") { control.checked = state[id] === true; } else { control.value = state[id]; }
    });
  }

  var navigation = window.performance && performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
  document.querySelectorAll("form.js-estimate").forEach(function (form) {
    if (navigation && navigation.type === "back_forward") { restoreState(form); }
    form.addEventListener("input", function () { saveState(form); });
    form.addEventListener("change", function () { saveState(form); });
  });

  function reopenFilledSections() {
    document.querySelectorAll("form.js-estimate details.activity-toggle").forEach(function (details) {
      var filled = Array.prototype.some.call(details.querySelectorAll("[data-field]"), changed);
      for (var open = filled ? details : null; open; open = open.parentElement.closest("details")) {
        open.open = true;
      }
    });
  }
  reopenFilledSections();
  window.addEventListener("pageshow", reopenFilledSections);

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
    // The line under the button names the chosen project and its price.
    var chosen = form.querySelector(".js-chosen-project");
    form.querySelectorAll("input[name='project_id']").forEach(function (radio) {
      radio.addEventListener("change", function () {
        if (chosen && radio.checked) { chosen.textContent = radio.dataset.summary; }
      });
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
      }, function (error) {
        busy(button, false);
        if (isOffline(error)) {
          // The same attempt (and key) when back online: the order may have been placed.
          showFormError(form, form.dataset.offlineMessage);
          whenOnline(form, function () { form.requestSubmit(); });
        } else {
          showFormError(form, form.dataset.failedMessage);
        }
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
        if (wasHidden) { celebrate(link); }
      }
    }

    // The ending: the heading and the title say the certificate is ready, a short
    // celebration (none with reduced motion: app.css), an announcement, the focus on the
    // way to it, and after a few seconds the certificate itself, unless the guest stays.
    function celebrate(link) {
      var title = document.querySelector(".js-pay-title");
      title.textContent = title.dataset.readyTitle;
      var stepsTitle = progress.querySelector("h2");
      stepsTitle.textContent = stepsTitle.dataset.doneTitle;
      document.title = title.dataset.readyTitle + " · " + title.dataset.site;
      var confetti = root.querySelector(".celebration");
      confetti.hidden = false;
      progress.classList.add("ready");
      root.querySelector(".js-announce").textContent = root.dataset.readyMessage;
      link.focus();
      var moving = root.querySelector(".moving");
      var countdown = moving.querySelector(".js-countdown");
      var seconds = 5;
      function tick() {
        countdown.textContent = moving.dataset.template.replace("{seconds}", formatNumber(seconds));
        if (seconds === 0) { window.location.assign(link.href); return; }
        seconds -= 1;
        moveTimer = window.setTimeout(tick, 1000);
      }
      moving.hidden = false;
      tick();
      moving.querySelector(".js-stay").addEventListener("click", function () {
        window.clearTimeout(moveTimer);
        moving.hidden = true;
        link.focus();
      });
    }
    var moveTimer = null;

    function poll() {
      api("GET", "/api/v1/orders/" + encodeURIComponent(orderId)).then(function (reply) {
        var order = reply.body || {};
        if (reply.status === 200) { render(order); }
        if (root.querySelector(".slow").textContent === root.dataset.offlineMessage) {
          root.querySelector(".slow").hidden = true;  // answered: online again
        }
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
      }, function (error) {
        if (isOffline(error)) {
          var note = root.querySelector(".slow");
          note.textContent = root.dataset.offlineMessage;
          note.hidden = false;
          whenOnline(root, function () { window.clearTimeout(timer); poll(); });
        }
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
        }, function (failure) {
          busy(button, false);
          // Offline: said so, and paid when back (paying twice changes nothing).
          error.textContent = isOffline(failure) ? root.dataset.offlineMessage : root.dataset.failedMessage;
          error.hidden = false;
          if (isOffline(failure)) { whenOnline(button, function () { button.click(); }); }
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
    window.addEventListener("pagehide", function () { window.clearTimeout(timer); window.clearTimeout(moveTimer); });
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
